#!/usr/bin/env bash
# The project's test command (README): lint, then unit + integration tests against the real
# stack (router, Mooncake, Docker). Extra arguments go to pytest (e.g. -k, -m "not docker").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
py_dirs=()
for d in src plugins tests bench scripts; do [ -d "$d" ] && py_dirs+=("$d"); done
echo "== ruff"
ruff check "${py_dirs[@]}"
echo "== pytest"
pytest -q -ra "$@"
