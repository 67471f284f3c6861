#!/usr/bin/env bash
# Configures and builds build-asan/: clang 14, AddressSanitizer + UBSan (aborting on the first
# report) at -O1 with assertions on, libFuzzer coverage everywhere and the fuzz targets of fuzz/.
# Used by test.sh and fuzz.sh; safe to run again (incremental). No benchmarks (not run there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DSUBLEDGER_WERROR=ON -DSUBLEDGER_FUZZ=ON -DSUBLEDGER_BUILD_BENCH=OFF \
  -DSUBLEDGER_FUZZ_SECONDS="${SUBLEDGER_FUZZ_SECONDS:-120}" >&2
cmake --build build-asan -j "$(nproc)" >&2
