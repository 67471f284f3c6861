#!/usr/bin/env bash
# Installs what is missing (Debian packages, non-interactive) and builds subledger into build/.
# Sourced by demo.sh and test.sh; safe to run again (it only installs what is absent).
# SUBLEDGER_WERROR=ON makes warnings errors (test.sh sets it); clang and its sanitizer runtime
# are for the sanitizer and fuzzing build (scripts/sanitize_build.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(build-essential cmake pkg-config librocksdb-dev capnproto libcapnp-dev libspdlog-dev
          libgtest-dev libbenchmark-dev libcli11-dev libfmt-dev nlohmann-json3-dev libssl-dev libabsl-dev libboost-dev
          python3 clang clang-14 libclang-rt-14-dev
          help2man man-db dpkg-dev file zsh python3-jsonschema)
# help2man: the man page; man-db, dpkg-dev (dpkg-shlibdeps) and file: the .deb and its check
# (scripts/package_check.sh); zsh: its completion's syntax check; python3-jsonschema: the server
# tests check every response against server/openapi.json. npm installs the OpenAPI linter
# (scripts/redocly.sh): Debian's npm only where no node install (e.g. NodeSource's) brings one.
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

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSUBLEDGER_WERROR="${SUBLEDGER_WERROR:-OFF}" \
  -DSUBLEDGER_BUILD_TESTS="${SUBLEDGER_BUILD_TESTS:-ON}" -DSUBLEDGER_BUILD_BENCH="${SUBLEDGER_BUILD_BENCH:-ON}" >&2
cmake --build build -j "$(nproc)" >&2
