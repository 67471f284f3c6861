#!/usr/bin/env bash
# One command: install what is missing, build, and run every test (GoogleTest under CTest), then
# the same suite again in the sanitizer build (clang, ASan + UBSan) together with the fuzz
# targets (about 60 s each; SUBLEDGER_FUZZ_SECONDS changes that). Warnings are errors here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { echo "test.sh: $1 ($(date -u +%T))" >&2; }

step "setup and GCC build (build/)"
SUBLEDGER_WERROR=ON bash scripts/setup.sh
step "tests (build/)"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900)

step "clang sanitizer and fuzzing build (build-asan/)"
bash scripts/sanitize_build.sh
step "tests and fuzzing under ASan + UBSan (build-asan/)"
source scripts/sanitizer_env.sh
(cd build-asan && ctest --output-on-failure -j "$(nproc)" --timeout 900)
step "done"
