#!/usr/bin/env bash
# The project's test command (README): static checks (ruff, mypy, ansible-lint production,
# yamllint, antsibull-changelog lint, ansible-test sanity offline), then unit + integration tests
# against the real stack (router, Mooncake, Docker). Extra arguments go to pytest (e.g. -k,
# -m "not docker"). PDT_SKIP_STATIC=1 skips the static checks (quick local pytest runs).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
py_dirs=()
for d in src plugins tests bench scripts; do [ -d "$d" ] && py_dirs+=("$d"); done
echo "== ruff"
ruff check "${py_dirs[@]}"
if [ "${PDT_SKIP_STATIC:-0}" != 1 ]; then
  bash scripts/typecheck.sh
  bash scripts/lint.sh
  echo "== ansible-test sanity"
  bash scripts/sanity.sh
fi
# Two pytest workers (PDT_WORKERS), one test file each at a time (--dist loadfile: a file's
# module-scoped cluster stays in one worker), handed out longest file first (the order
# tests/conftest.py gives; --no-loadscope-reorder keeps it). What every rehearsal cluster
# shares (images, SSH key, model directories) is made once first, so parallel `cluster.py up`
# calls only read it.
if docker info >/dev/null 2>&1; then
  echo "== rehearsal images, SSH key, model directories (scripts/cluster.py prepare)"
  python scripts/cluster.py prepare
fi
echo "== pytest"
pytest -q -ra --durations=30 -n "${PDT_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
