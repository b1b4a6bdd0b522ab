"""Molecule scenarios in the test suite: prepare, converge, idempotence (changed=0), verify,
cleanup, destroy.

Every scenario runs on molecule's base config .config/molecule/config.yml (Docker driver, test
sequence, the shared prepare and cleanup in molecule/_shared/), which the run.sh wrappers pass
with --base-config. molecule/cluster/run.sh also checks that destroy left no container, network
or volume labelled for the scenario. Platforms from the project's locally built images (no
registry).
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
        ("molecule/cluster/run.sh", "cluster"),
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
