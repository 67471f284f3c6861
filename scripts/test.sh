#!/usr/bin/env bash
# One command: install what is missing, build, and run every test (GoogleTest under CTest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 900
