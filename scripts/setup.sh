#!/usr/bin/env bash
# Installs what is missing (Debian packages, non-interactive) and builds subledger into build/.
# Sourced by demo.sh and test.sh; safe to run again (it only installs what is absent).
# RocksDB: scripts/rocksdb_release.sh builds Debian's source of the installed version as a Release
# build once per machine (cached under /var/cache/subledger) and subledger links it statically,
# with Debian's other static archives (SUBLEDGER_STATIC_DEPS). SUBLEDGER_ROCKSDB=system links
# Debian's shared librocksdb instead (assertions compiled in; no RocksDB build).
# SUBLEDGER_WERROR=ON makes warnings errors (test.sh sets it); clang and its sanitizer runtime
# are for the sanitizer and fuzzing build (scripts/sanitize_build.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(build-essential cmake pkg-config librocksdb-dev capnproto libcapnp-dev libspdlog-dev
          libgtest-dev libbenchmark-dev libcli11-dev libfmt-dev nlohmann-json3-dev libssl-dev libabsl-dev libboost-dev
          python3 clang clang-14 libclang-rt-14-dev
          help2man man-db dpkg-dev file zsh python3-jsonschema ninja-build ccache libgoogle-perftools-dev)
# help2man: the man page; man-db, dpkg-dev (dpkg-shlibdeps) and file: the .deb and its check
# (scripts/package_check.sh); zsh: its completion's syntax check; python3-jsonschema: the server
# tests check every response against server/openapi.json. npm installs the OpenAPI linter
# (scripts/redocly.sh): Debian's npm only where no node install (e.g. NodeSource's) brings one.
# dpkg-dev also unpacks RocksDB's source (apt-get source), ninja-build builds it (resumably), and
# ccache caches both builds' compiles. libgoogle-perftools-dev: tcmalloc_minimal's static archive, the
# allocator of the static build (cmake/Dependencies.cmake).
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

case "${SUBLEDGER_ROCKSDB:-release}" in
  release)
    # A machine that cannot fetch or build the source (no deb-src mirror reachable, no disk) still
    # gets a working build: the shared library, slower, said on stderr.
    if ! rocksdb_root=$(bash scripts/rocksdb_release.sh) || [ ! -f "$rocksdb_root/lib/librocksdb.a" ]; then
      echo "setup: warning: the Release RocksDB could not be built (above); linking Debian's shared" \
           "librocksdb instead (assertions compiled in, slower). Run scripts/rocksdb_release.sh to retry." >&2
      rocksdb_root=""
    fi ;;
  system) rocksdb_root="" ;;
  *) echo "setup: SUBLEDGER_ROCKSDB='$SUBLEDGER_ROCKSDB': accepted are release (default) and system" >&2
     exit 2 ;;
esac
# ccache (paths taken relative to the clone, the directory left out of the hash, so that another
# clone of the same tree hits) makes a build on a machine that has built once mostly cache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSUBLEDGER_WERROR="${SUBLEDGER_WERROR:-OFF}" \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DSUBLEDGER_ROCKSDB_ROOT="$rocksdb_root" -DSUBLEDGER_STATIC_DEPS="$([ -n "$rocksdb_root" ] && echo ON || echo OFF)" \
  -DSUBLEDGER_BUILD_TESTS="${SUBLEDGER_BUILD_TESTS:-ON}" -DSUBLEDGER_BUILD_BENCH="${SUBLEDGER_BUILD_BENCH:-ON}" >&2
cmake --build build -j "$(nproc)" >&2
