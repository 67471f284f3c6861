#!/usr/bin/env bash
# RocksDB built for speed: Debian's librocksdb is configured with CMake build type "None", so its
# assertions stay compiled in (about half of a memtable insert's key comparisons are assert-only).
# This builds RocksDB's static library from Debian's own source package of the INSTALLED version
# (with Debian's patches) as a Release build (-O2 -DNDEBUG, no debug info, PORTABLE), once per
# machine, into a cache outside the clone keyed by version, compiler and flags:
#
#   $SUBLEDGER_ROCKSDB_CACHE (default /var/cache/subledger)/rocksdb-<version>-<key>/
#       include/rocksdb/  lib/librocksdb.a  BUILD_INFO  [bin/db_bench]
#
#   scripts/rocksdb_release.sh             prints that directory (building it if absent)
#   scripts/rocksdb_release.sh --db-bench  also builds db_bench from the same source and flags
#                                          and prints its path (bench/run calls this)
#
# Only the `rocksdb` static library target is compiled (about 320 compiler runs). The directory
# appears by a rename once complete, so a half-built library is never used. The source and build
# tree stay beside it (.work-*): an interrupted build resumes where it stopped (ninja reruns any
# step whose completion it did not log; the source is unpacked and configured again unless that
# had finished), and db_bench later costs only its own three files. Concurrent runs wait for each
# other (flock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "rocksdb_release: $*" >&2; }
die() { log "$*"; exit 1; }

want_db_bench=0
case "${1:-}" in
  "") ;;
  --db-bench) want_db_bench=1 ;;
  *) die "unknown argument '$1' (accepted: no argument, or --db-bench)" ;;
esac

version=$(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null) ||
  die "librocksdb-dev is not installed (scripts/setup.sh installs it); its version is the one built"
upstream=${version#*:}
upstream=${upstream%-*}

# One configuration for the library and db_bench. gflags is found only because db_bench needs it:
# in the library it changes nothing but three trace-analyzer tool objects that subledger never
# links (and the archive needs no -lgflags). Tests and the other tools are not even configured;
# db_bench's target exists but is built only on demand. RTTI stays on as in Debian's build (its
# build type "None" keeps the compiler's default), so classes deriving from RocksDB's link.
FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG"
  "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
  -DPORTABLE=ON -DUSE_RTTI=ON -DFAIL_ON_WARNINGS=OFF
  -DWITH_SNAPPY=ON -DWITH_LZ4=ON -DWITH_ZSTD=ON -DWITH_ZLIB=ON -DWITH_BZ2=ON
  -DWITH_LIBURING=OFF -DWITH_JEMALLOC=OFF -DWITH_TBB=OFF -DWITH_NUMA=OFF
  -DROCKSDB_BUILD_SHARED=OFF -DWITH_TESTS=OFF -DWITH_TOOLS=OFF -DWITH_CORE_TOOLS=OFF
  -DWITH_BENCHMARK_TOOLS=ON -DWITH_GFLAGS=ON
)
# The default compilers (CC/CXX from the environment are ignored: the sanitizer build sets clang).
compiler=$(env -u CC -u CXX c++ --version | head -n1)
recipe=1  # bump when this script changes what it builds
key=$(printf '%s\n' "$recipe" "$version" "$compiler" "${FLAGS[@]}" | sha256sum | cut -c1-12)

cache=${SUBLEDGER_ROCKSDB_CACHE:-/var/cache/subledger}
name="rocksdb-${upstream}-${key}"
prefix="$cache/$name"
work="$cache/.work-$name"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# apt-get source needs a deb-src entry: mirror every enabled `deb` entry of the configured suites.
ensure_deb_src() {
  if apt-get source --print-uris -qq "rocksdb=$version" >/dev/null 2>&1; then return; fi
  if ! grep -Eqs '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' \
       /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    log "adding deb-src entries for the configured suites (/etc/apt/sources.list.d/subledger-deb-src.*)"
    local f stanzas=""
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -e "$f" ] || continue
      # Paragraph mode: each stanza whose Types include deb, with Types: deb-src.
      stanzas+=$(awk 'BEGIN { RS = ""; ORS = "\n\n" }
                      /(^|\n)Types:[^\n]*[[:space:]]deb([[:space:]]|$)/ && !/(^|\n)Enabled:[[:space:]]*no/ {
                        sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' \
                  "$f")$'\n\n'
    done
    [ -z "${stanzas//[[:space:]]/}" ] ||
      printf '%s' "$stanzas" | $SUDO tee /etc/apt/sources.list.d/subledger-deb-src.sources >/dev/null
    if [ -f /etc/apt/sources.list ] && grep -Eq '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
      sed -nE 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list |
        $SUDO tee /etc/apt/sources.list.d/subledger-deb-src.list >/dev/null
    fi
  fi
  $SUDO apt-get update -qq >&2
  apt-get source --print-uris -qq "rocksdb=$version" >/dev/null ||
    die "apt-get source rocksdb=$version: the configured deb-src suites do not have the installed version's source"
}

# Unpacks the source (Debian's patches applied) and configures the build tree in $work, unless an
# earlier run got that far (the .configured mark).
configure() {
  if [ -f "$work/.configured" ]; then return; fi
  rm -rf "$work"
  mkdir -p "$work"
  ensure_deb_src
  log "apt-get source rocksdb=$version"
  (cd "$work" && apt-get source -qq "rocksdb=$version" >/dev/null 2>"$work/apt-source.log") ||
    { cat "$work/apt-source.log" >&2; die "apt-get source rocksdb=$version failed"; }
  rm -f "$work"/*.tar.* "$work"/*.dsc
  [ -d "$work/rocksdb-$upstream" ] || die "apt-get source did not unpack rocksdb-$upstream"
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  env -u CC -u CXX cmake -S "$work/rocksdb-$upstream" -B "$work/build" -G Ninja \
    "${FLAGS[@]}" "${launcher[@]}" >"$work/configure.log" ||
    { tail -n 30 "$work/configure.log" >&2; die "configuring RocksDB failed (log: $work/configure.log)"; }
  touch "$work/.configured"
}

build_target() {
  local target=$1 start=$SECONDS
  log "building $target of RocksDB $version into $cache (-O2 -DNDEBUG, $(nproc) jobs)"
  cmake --build "$work/build" --target "$target" -j "$(nproc)" >"$work/build-$target.log" ||
    { tail -n 30 "$work/build-$target.log" >&2; die "building $target failed (log: $work/build-$target.log)"; }
  log "$target built in $((SECONDS - start)) s"
}

# Ninja, for resuming safely: it records each finished step, so a step cut short is run again.
command -v ninja >/dev/null || die "ninja is missing (Debian package ninja-build; scripts/setup.sh installs it)"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [ ! -f "$prefix/lib/librocksdb.a" ]; then
  start=$SECONDS
  configure
  build_target rocksdb
  stage="$work/stage"
  rm -rf "$stage"
  mkdir -p "$stage/lib" "$stage/include"
  cp -a "$work/rocksdb-$upstream/include/rocksdb" "$stage/include/"
  cp "$work/build/librocksdb.a" "$stage/lib/"
  {
    echo "RocksDB $version (Debian source package rocksdb=$version, Debian's patches applied)"
    echo "compiler: $compiler"
    echo "ccache: $(command -v ccache >/dev/null && echo yes || echo no)"
    echo "cmake flags:"
    printf '  %s\n' "${FLAGS[@]}"
    echo "built in $((SECONDS - start)) s on $(nproc) cores"
  } >"$stage/BUILD_INFO"
  rm -rf "$prefix"
  mv -T "$stage" "$prefix"
  log "installed $prefix"
fi

if ((want_db_bench)); then
  if [ ! -x "$prefix/bin/db_bench" ]; then
    configure
    build_target db_bench
    mkdir -p "$prefix/bin"
    cp "$work/build/db_bench" "$prefix/bin/.db_bench.tmp"
    mv -f "$prefix/bin/.db_bench.tmp" "$prefix/bin/db_bench"
  fi
  echo "$prefix/bin/db_bench"
else
  echo "$prefix"
fi
