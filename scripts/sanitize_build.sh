#!/usr/bin/env bash
# Configures and builds build-asan/: clang 14, AddressSanitizer + UBSan (aborting on the first
# report) at -O1 with assertions on, libFuzzer coverage everywhere and the fuzz targets of fuzz/.
# Used by test.sh and fuzz.sh; safe to run again (incremental). No benchmarks (not run there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# ccache as in setup.sh (paths relative to the clone, its directory out of the hash): on a machine
# that has built once, this build is mostly cache hits too (it took 10-11 min without them).
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
else
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=)  # a cached one too
fi
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug "${launcher[@]}" \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DSUBLEDGER_WERROR=ON -DSUBLEDGER_FUZZ=ON -DSUBLEDGER_BUILD_BENCH=OFF \
  -DSUBLEDGER_FUZZ_SECONDS="${SUBLEDGER_FUZZ_SECONDS:-120}" >&2
cmake --build build-asan -j "$(nproc)" >&2
