#!/usr/bin/env bash
# The project's test command (README): lint, unit tests, integration tests against the real stack.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check src plugins tests bench scripts
echo "== pytest"; pytest -q -ra "$@"
