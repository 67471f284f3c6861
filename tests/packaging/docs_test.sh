#!/usr/bin/env bash
# The generated man page and shell completions cover every subcommand and every flag that the
# binary's own help lists (read here independently of packaging/cli_docs.py), and the bash
# completion answers as a shell would ask it.
#   docs_test.sh BINARY BASH_COMPLETION ZSH_COMPLETION MAN_PAGE_GZ
# Also run by scripts/package_check.sh against the installed files.
set -uo pipefail
bin=$1 bash_completion=$2 zsh_completion=$3 man_page=$4
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# shellcheck source=/dev/null
source "$bash_completion" || { echo "FAIL: $bash_completion does not load"; exit 1; }
completions() {  # the words bash would offer for the command line "$@" (the last word is typed)
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _subledger 2>/dev/null
  printf '%s\n' "${COMPREPLY[@]}"
}
expect() {  # expect WORD COMMAND_LINE...
  local want=$1
  shift
  completions "$@" | grep -xF -- "$want" >/dev/null || fail "bash: '$*' does not offer '$want'"
}
subcommands_of() {  # the subcommands that `subledger PATH --help` lists
  "$bin" "$@" --help | awk 'tolower($0) ~ /^subcommands:/ {on = 1; next}
                            on && /^[^ ]/ {on = 0} on && NF {print $1}'
}
flags_of() {  # the flags that `subledger PATH --help` lists
  "$bin" "$@" --help | grep -oE '^  (-[A-Za-z0-9],)?--[A-Za-z0-9][A-Za-z0-9-]*' | tr ',' '\n' |
    sed 's/^ *//'
}
man_text=$(zcat "$man_page") || fail "the man page $man_page is not readable"
zsh_text=$(cat "$zsh_completion")
commands=0
walk() {  # walk PATH...: every command under PATH
  local sub flag
  for flag in $(flags_of "$@"); do
    expect "$flag" subledger "$@" "${flag:0:2}"
    grep -qF -- "'$flag[" <<<"$zsh_text" || grep -qF -- "$flag," <<<"$zsh_text" ||
      grep -qF -- ",$flag}" <<<"$zsh_text" || fail "zsh: no spec for $* $flag"
    [ $# -eq 0 ] || grep -qF -- "${flag//-/\\-}" <<<"$man_text" ||
      fail "man page: no $flag for '$*'"
  done
  for sub in $(subcommands_of "$@"); do
    commands=$((commands + 1))
    expect "$sub" subledger "$@" ""
    expect "$sub" subledger "$@" "${sub:0:2}"
    grep -qF -- ".SS \"subledger $* $sub\"" <<<"${man_text//subledger  /subledger }" ||
      grep -qF -- ".SS \"subledger ${*:+$* }$sub\"" <<<"$man_text" ||
      fail "man page: no section for 'subledger ${*:+$* }$sub'"
    grep -qF -- "'$sub:" <<<"$zsh_text" || fail "zsh: no '$sub' among the commands of '$*'"
    walk "$@" "$sub"
  done
}
walk
[ "$commands" -ge 10 ] || fail "only $commands subcommands found in the help: has its format changed?"
# Options that take a value: their value is not taken for a subcommand, and listed values complete.
expect --customer subledger --db /tmp/x invoices --cu
expect SeatsChanged subledger log --type Seat
[ -z "$(completions subledger state --db "")" ] || fail "bash: a value of --db completes as a subcommand"
if command -v zsh >/dev/null; then
  zsh -n "$zsh_completion" || fail "zsh: $zsh_completion is not valid zsh"
else
  echo "note: zsh not installed, its completion's syntax not checked"
fi
if [ "$failures" -eq 0 ]; then
  echo "docs_test: man page, bash and zsh completions cover $commands commands and their flags"
fi
exit $((failures > 0))
