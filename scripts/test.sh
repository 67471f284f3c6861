#!/usr/bin/env bash
# One command: install what is missing, build, and run every test (GoogleTest under CTest), then
# the same suite again in the sanitizer build (clang, ASan + UBSan) together with the fuzz
# targets (about 60 s each; SUBLEDGER_FUZZ_SECONDS changes that). Warnings are errors here.
# Between the two, the .deb is built and installed on this machine, checked and removed again
# (scripts/package_check.sh), and the OpenAPI document is linted (ctest OpenApi.Lint).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { echo "test.sh: $1 ($(date -u +%T))" >&2; }

step "setup and GCC build (build/)"
SUBLEDGER_WERROR=ON bash scripts/setup.sh
step "the OpenAPI linter (npm @redocly/cli, pinned, cached outside the clone)"
SUBLEDGER_REDOCLY=$(bash scripts/redocly.sh)
cmake -S . -B build -DSUBLEDGER_REDOCLY="$SUBLEDGER_REDOCLY" >&2
step "tests (build/)"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900)
step "the .deb: build, install, man page, /usr/bin/subledger, remove (scripts/package_check.sh)"
bash scripts/package_check.sh build

step "clang sanitizer and fuzzing build (build-asan/)"
bash scripts/sanitize_build.sh
step "tests and fuzzing under ASan + UBSan (build-asan/)"
source scripts/sanitizer_env.sh
(cd build-asan && ctest --output-on-failure -j "$(nproc)" --timeout 900)
step "done"
