#!/usr/bin/env bash
# Installs the pinned @redocly/cli (npm) once per machine, outside the clone, and prints the path
# of its `redocly` program. The OpenAPI document's lint (ctest OpenApi.Lint) runs it; test.sh calls
# this before configuring so that the test is not skipped. Needs node and npm (scripts/setup.sh).
# SUBLEDGER_TOOLS_DIR moves the cache (default: ~/.cache/subledger/tools).
set -euo pipefail
VERSION=1.34.20   # 1.x runs on Debian's node 18 as on node 20 (1.34.21 names a respect-core that was never published)
dir="${SUBLEDGER_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/subledger/tools}/redocly-cli-$VERSION"
bin="$dir/node_modules/.bin/redocly"
if [ ! -x "$bin" ]; then
  echo "redocly.sh: installing @redocly/cli@$VERSION into $dir" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
    "@redocly/cli@$VERSION" >&2
fi
echo "$bin"
