#!/usr/bin/env bash
# One command: install what is missing, build, and run the main job on the embedded demo ledger
# (one partner, a few dozen customers, fourteen months of activity billed month by month).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUBLEDGER_BUILD_TESTS=OFF SUBLEDGER_BUILD_BENCH=OFF bash scripts/setup.sh
DB="${SUBLEDGER_DB:-./subledger-demo}"
exec ./build/app/subledger demo --db "$DB" "$@"
