#!/usr/bin/env bash
# The longer fuzz run: scripts/fuzz.sh SECONDS (default 600) fuzzes each target of fuzz/ for
# SECONDS, one after the other, in the sanitizer build (built first if needed). The corpus grows
# across runs in build-asan/fuzz/corpus/; a crash stops the run with its input in
# build-asan/fuzz/artifacts/ (then: fix it, and commit the input under fuzz/corpus-regressions/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-600}
bash scripts/sanitize_build.sh
source scripts/sanitizer_env.sh
(cd build-asan && ctest -R '^Fuzz\.(Seeds|Regressions)' --output-on-failure)
for t in command event rows; do
  echo "fuzz.sh: fuzz_$t for $seconds s" >&2
  bash fuzz/run_fuzzer.sh "build-asan/fuzz/fuzz_$t" "$seconds" "build-asan/fuzz/corpus/$t" \
    "build-asan/fuzz/seeds/$t" "build-asan/fuzz/artifacts"
done
