#!/usr/bin/env bash
# Run `ansible-test sanity` on the working tree of this checkout, offline from Ansible's CI files.
#
# Why a copy: ansible-test must run from a directory .../ansible_collections/inferops/disagg/ that
# is not a symlink (it resolves .cache/collections/.../disagg -> this checkout and refuses it). So
# this script copies the working tree (tracked files as they are on disk, plus untracked files that
# .gitignore does not ignore; deleted files stay out) into a temporary
# ansible_collections/inferops/disagg/, runs `git init` + `git add` there (ansible-test lists a
# collection's files with git), and copies community.docker (our modules import it and extend its
# doc fragment) next to it from the venv.
#
# Why a bootstrap substitute: each sanity test runs in a virtual environment that ansible-test
# creates without pip and then fills with `get-pip.py`, downloaded from
# https://ci-files.testing.ansible.com (unreachable here; PyPI is reachable). ansible-test first
# looks for a cached copy at ~/.ansible/test/cache/get_pip_<pip version>.py (see
# ansible_test/_util/target/setup/requirements.py bootstrap()). This script writes its own small
# substitute there: it runs `python -m ensurepip` and then `pip install` from PyPI with the
# packages ansible-test asks for (pip==<version>), dropping get-pip-only flags (--no-setuptools,
# --no-wheel; it removes the setuptools that ensurepip brings when --no-setuptools was asked).
# A cached file that is not ours (a real get-pip.py) is left alone.
#
# What runs: every sanity test on every file, except pylint, which runs on plugins/ and
# tests/unit/plugins/ only (on the whole tree it takes ~90 of ~120 s; src/, scripts/, bench/ and the
# other tests are plain Python that ruff lints). SANITY_FULL=1 runs pylint on everything too.
#
# Usage: bash scripts/sanity.sh [ansible-test sanity options and targets, e.g. --test pep8]
#        (with options, exactly one ansible-test run with them)
# Env:   SANITY_KEEP=1 keeps the temporary copy (its path is printed); SANITY_FULL=1 (see above).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo}/.venv"
python_version=3.11
marker="inferops.disagg offline get-pip substitute"
PYLINT_PATHS=(plugins/ tests/unit/plugins/)
tmp=""  # the temporary copy (global: the EXIT trap reads it after main returns)

# The pip version ansible-test bootstraps its test environments with.
pip_version="$("${venv}/bin/python" - <<'EOF'
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])
EOF
)"
cache="${HOME}/.ansible/test/cache/get_pip_${pip_version//./_}.py"

install_bootstrap() {
  if [[ -f "${cache}" ]] && ! grep -q "${marker}" "${cache}"; then
    echo "sanity.sh: keeping ${cache} (not ours)"
    return
  fi
  mkdir -p "$(dirname "${cache}")"
  cat >"${cache}.tmp" <<EOF
"""${marker}: stands in for get-pip.py (written by scripts/sanity.sh).

ansible-test runs it as \`python get-pip.py [pip options] <packages> [--no-setuptools] [--no-wheel]\`
in a venv created without pip: install pip with ensurepip, then the requested packages from PyPI.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    """Bootstrap pip, install the requested packages, honour --no-setuptools."""
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)
    if "--no-setuptools" in sys.argv:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes",
                        "setuptools"], check=True)


main()
EOF
  mv "${cache}.tmp" "${cache}"
}

copy_tree() {
  local dest="$1"
  mkdir -p "${dest}"
  # Tracked + untracked-not-ignored files as they are on disk (deleted ones skipped).
  (cd "${repo}" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done \
    | tar --null --no-recursion -T - -cf -) | tar -xf - -C "${dest}"
  (cd "${dest}" && git init -q && git add -A)
}

copy_deps() {
  local root="$1" site
  site="$("${venv}/bin/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')"
  mkdir -p "${root}/community"
  cp -r "${site}/community/docker" "${root}/community/docker"
}

# ansible-test sanity in the copy at $1 with the remaining arguments.
run_sanity() {
  local dest="$1"; shift
  (cd "${dest}" && PATH="${venv}/bin:${PATH}" "${venv}/bin/ansible-test" sanity \
    --python "${python_version}" --color no "$@")
}

main() {
  local root dest started rc=0
  install_bootstrap
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/disagg-sanity.XXXXXX")"
  root="${tmp}/ansible_collections"
  dest="${root}/inferops/disagg"
  if [[ "${SANITY_KEEP:-0}" == 1 ]]; then
    echo "sanity.sh: copy kept at ${dest}"
  else
    trap 'rm -rf "${tmp}"' EXIT
  fi
  copy_tree "${dest}"
  copy_deps "${root}"
  started=$(date +%s)
  if (( $# > 0 )) || [[ "${SANITY_FULL:-0}" == 1 ]]; then
    run_sanity "${dest}" "$@" || rc=$?
  else
    # Every test on every file, except pylint: it runs on the Ansible plugin code and its unit
    # tests only (PYLINT_PATHS). On the whole tree it takes ~90 of ~120 s, and the rest (src/,
    # scripts/, bench/, tests/ outside tests/unit/plugins) is plain Python linted by ruff.
    run_sanity "${dest}" --skip-test pylint || rc=$?
    run_sanity "${dest}" --test pylint "${PYLINT_PATHS[@]}" || rc=$?
  fi
  echo "sanity.sh: ansible-test sanity exited ${rc} after $(( $(date +%s) - started )) s"
  return "${rc}"
}

main "$@"
