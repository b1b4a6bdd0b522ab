"""Molecule scenarios in the test suite: prepare, converge, idempotence (changed=0), verify,
cleanup, destroy.

Every scenario runs on molecule's base config .config/molecule/config.yml (Docker driver, test
sequence, the shared prepare and cleanup in molecule/_shared/), which the run.sh wrappers pass
with --base-config. molecule/cluster/run.sh also checks that destroy left no container, network
or volume labelled for the scenario. Platforms from the project's locally built images (no
registry).

The role scenarios run here: sglang_worker, router, preflight. The other scenarios run with
``molecule/cluster/run.sh test <scenario>`` (``molecule/preflight/run.sh test`` for preflight).
``cluster`` (the whole 2P1D deploy, idempotence, a /generate through the router) is not in this
list: tests/integration/test_deploy.py checks the same deploy, over SSH like real hosts, and CI
time is bounded (docs/development.md, "CI time").
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.mark.parametrize(
    ("script", "scenario"),
    [
        ("molecule/cluster/run.sh", "sglang_worker"),
        ("molecule/cluster/run.sh", "router"),
        ("molecule/preflight/run.sh", None),
    ],
)
def test_molecule_scenario(script: str, scenario: str | None) -> None:
    argv = ["bash", script, "test"] + ([scenario] if scenario else [])
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]  # molecule fails the run on a non-idempotent task
