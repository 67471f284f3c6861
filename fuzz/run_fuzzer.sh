#!/usr/bin/env bash
# run_fuzzer.sh [--fresh] FUZZER SECONDS CORPUS_DIR SEED_DIR ARTIFACT_DIR [libFuzzer flags...]
# Fuzzes for at most SECONDS (wall clock) from CORPUS_DIR (kept; grows) and SEED_DIR (read only).
# --fresh empties CORPUS_DIR first, so a run with a fixed -seed and -runs (as ctest does) explores
# exactly the same inputs on every machine: CI is a repeatable check, the open-ended search is
# scripts/fuzz.sh.
# Exit status is the fuzzer's: non-zero on a crash, a sanitizer report, a leak or a timeout,
# with the input that did it in ARTIFACT_DIR. libFuzzer's final statistics go to stderr.
set -euo pipefail
fresh=0
if [[ ${1:-} == --fresh ]]; then fresh=1; shift; fi
fuzzer=$1 seconds=$2 corpus=$3 seeds=$4 artifacts=$5
shift 5
if (( fresh )); then rm -rf "$corpus"; fi
mkdir -p "$corpus" "$seeds" "$artifacts"
# -timeout: one input taking over 10 s is a hang (a report, not a pass).
# -rss_limit_mb: a decoder that can be made to allocate gigabytes is a bug too.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$(basename "$fuzzer")-" "$@" "$corpus" "$seeds"
