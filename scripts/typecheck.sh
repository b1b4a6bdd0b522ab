#!/usr/bin/env bash
# Type-check src/ with mypy and the [tool.mypy] settings in pyproject.toml (which name src/ as
# the files to check). Exits non-zero when mypy reports any error. Extra arguments go to mypy
# (e.g. a narrower path: scripts/typecheck.sh src/pd_rehearsal).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/mypy ] || { echo "error: .venv/bin/mypy missing; run scripts/setup.sh" >&2; exit 2; }
echo "== mypy"
exec .venv/bin/mypy --config-file pyproject.toml "$@"
