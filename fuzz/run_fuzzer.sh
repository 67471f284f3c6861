#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SECONDS CORPUS_DIR SEED_DIR ARTIFACT_DIR
# Fuzzes for SECONDS (wall clock) from CORPUS_DIR (kept; grows) and SEED_DIR (read only).
# Exit status is the fuzzer's: non-zero on a crash, a sanitizer report, a leak or a timeout,
# with the input that did it in ARTIFACT_DIR. libFuzzer's final statistics go to stderr.
set -euo pipefail
fuzzer=$1 seconds=$2 corpus=$3 seeds=$4 artifacts=$5
mkdir -p "$corpus" "$seeds" "$artifacts"
# -timeout: one input taking over 10 s is a hang (a report, not a pass).
# -rss_limit_mb: a decoder that can be made to allocate gigabytes is a bug too.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$(basename "$fuzzer")-" "$corpus" "$seeds"
