#!/usr/bin/env bash
# Ansible ecosystem lint for the collection: ansible-lint (production profile), yamllint (strict:
# warnings fail too) and antsibull-changelog (lint of the fragments, lint-changelog-yaml of
# changelogs/changelog.yaml).
# Runs every check even after a failure, prints each one's time, exits non-zero if any failed.
# Usage: bash scripts/lint.sh    (tools from .venv/, as scripts/setup.sh installs them)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
VENV_BIN="${VENV_BIN:-.venv/bin}"

failed=()
total_start=$(date +%s.%N)

run() {
  local name=$1
  shift
  echo "=== ${name}: $*"
  local start rc
  start=$(date +%s.%N)
  "$@"
  rc=$?
  local secs
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [[ $rc -eq 0 ]]; then
    echo "--- ${name}: ok (${secs} s)"
  else
    echo "--- ${name}: FAILED, exit ${rc} (${secs} s)"
    failed+=("$name")
  fi
}

run ansible-lint "$VENV_BIN/ansible-lint" --profile production
run yamllint "$VENV_BIN/yamllint" --strict .
run antsibull-changelog "$VENV_BIN/antsibull-changelog" lint
run changelog.yaml "$VENV_BIN/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml

total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "lint: FAILED: ${failed[*]} (${total} s)"
  exit 1
fi
echo "lint: all passed (${total} s)"
