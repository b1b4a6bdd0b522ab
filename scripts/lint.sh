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

# ansible-lint exits 0 when a fatal-listed warning lowers the achieved profile below the one
# asked for ("Profile 'production' was required, but 'min' profile passed"): count that as a
# failure, so "production clean" means what it says.
ansible_lint_production() {
  local out rc
  out=$("$VENV_BIN/ansible-lint" --profile production 2>&1)
  rc=$?
  printf '%s\n' "$out"
  if grep -q "Profile 'production' was required, but" <<<"$out"; then
    echo "ansible-lint: the production profile was not reached (see above)"
    return 1
  fi
  return "$rc"
}
run ansible-lint ansible_lint_production
run yamllint "$VENV_BIN/yamllint" --strict .
run antsibull-changelog "$VENV_BIN/antsibull-changelog" lint
run changelog.yaml "$VENV_BIN/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml

total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "lint: FAILED: ${failed[*]} (${total} s)"
  exit 1
fi
echo "lint: all passed (${total} s)"
