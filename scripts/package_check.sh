#!/usr/bin/env bash
# Builds the .deb from BUILD_DIR (default build/) with CPack and checks, on this machine, that it
# installs with dpkg, that `man subledger` finds its page, that /usr/bin/subledger runs, that the
# installed completions cover every command and flag, then removes the package again.
# Run by test.sh after the GCC build; needs root (or sudo) for dpkg.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
step() { echo "package_check: $1" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

if dpkg-query -W -f='${Status}' subledger 2>/dev/null | grep -q "install ok installed"; then
  echo "package_check: a subledger package is already installed ($(dpkg-query -W -f='${Version}' subledger));" \
       "this check installs and removes its own: remove it first (dpkg -r subledger)" >&2
  exit 2
fi

step "building the .deb (cpack, dependencies from dpkg-shlibdeps)"
rm -rf "$build/packages"
cpack --config "$build/CPackConfig.cmake" -B "$build/packages" >&2
deb=$(ls "$build"/packages/subledger_*.deb)
step "$deb: $(dpkg-deb -f "$deb" Package Version Architecture Depends | tr '\n' ' ')"
depends=$(dpkg-deb -f "$deb" Depends)
[ -n "$depends" ] || { echo "package_check: the .deb declares no dependencies" >&2; exit 1; }

# Debian's container images exclude /usr/share/man from every package (a path-exclude in
# /etc/dpkg/dpkg.cfg.d/); the page is included again for this package so that the check is real.
include_man=()
if grep -hs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/* >/dev/null; then
  step "dpkg here excludes /usr/share/man ($(grep -ls '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/* | tr '\n' ' '));" \
       "installing with --path-include for subledger's page"
  include_man=(--path-include='/usr/share/man/man1/subledger.1*')
fi

installed=0
cleanup() {
  if [ "$installed" -eq 1 ]; then
    step "removing the package"
    $SUDO dpkg -r subledger >/dev/null
  fi
}
trap cleanup EXIT

step "dpkg -i"
for attempt in 1 2 3 4 5 6; do  # another apt or dpkg may hold the lock for a while
  if out=$($SUDO dpkg -i "${include_man[@]}" "$deb" 2>&1); then break; fi
  if [[ $out != *lock* ]] || [ "$attempt" -eq 6 ]; then echo "$out" >&2; exit 1; fi
  sleep 10
done
installed=1

step "subledger --version from /usr/bin"
[ "$(command -v subledger)" = /usr/bin/subledger ] ||
  { echo "package_check: subledger resolves to '$(command -v subledger)', not /usr/bin/subledger" >&2; exit 1; }
version=$(/usr/bin/subledger --version)
expected="subledger $(dpkg-deb -f "$deb" Version)"
[ "$version" = "$expected" ] ||
  { echo "package_check: /usr/bin/subledger --version says '$version', expected '$expected'" >&2; exit 1; }

# The static build packages subledger-bulk, which subledger runs for its long commands.
# (grep reads the whole listing: with -q, dpkg-deb's broken pipe would fail the test under pipefail)
if dpkg-deb -c "$deb" | grep '/usr/libexec/subledger/subledger-bulk$' >/dev/null; then
  step "a long command runs in /usr/libexec/subledger/subledger-bulk"
  bulk=/usr/libexec/subledger/subledger-bulk
  [ -x "$bulk" ] || { echo "package_check: $bulk is not installed" >&2; exit 1; }
  scratch=$(mktemp -d)
  # `apply -` waits for its standard input (the sleep): meanwhile its process is the bulk binary.
  sleep 3 | /usr/bin/subledger apply -q --db "$scratch/db" - >/dev/null &
  pid=$!
  exe=""
  for _ in $(seq 100); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    [ "$exe" = "$bulk" ] && break
    sleep 0.02
  done
  wait "$pid" || { echo "package_check: subledger apply failed" >&2; rm -rf "$scratch"; exit 1; }
  rm -rf "$scratch"
  [ "$exe" = "$bulk" ] ||
    { echo "package_check: subledger apply ran as '$exe', not $bulk" >&2; exit 1; }
fi

step "man subledger"
page=$(man -w subledger)
[ "$page" = /usr/share/man/man1/subledger.1.gz ] ||
  { echo "package_check: man finds '$page', not /usr/share/man/man1/subledger.1.gz" >&2; exit 1; }
text=$(MANWIDTH=100 man -P cat subledger 2>/dev/null)
for heading in NAME SYNOPSIS OPTIONS COMMANDS "EXIT STATUS"; do
  grep -q "^$heading" <<<"$text" ||
    { echo "package_check: man subledger has no $heading section" >&2; exit 1; }
done

step "installed completions"
bash tests/packaging/docs_test.sh /usr/bin/subledger /usr/share/bash-completion/completions/subledger \
  /usr/share/zsh/vendor-completions/_subledger /usr/share/man/man1/subledger.1.gz >&2

step "ok: $(basename "$deb") installs, man subledger and /usr/bin/subledger --version work (Depends: $depends)"
