"""End to end on a real Slurm: slurmctld + four slurmd (node1..node4) on this machine.

Debian's slurm-wlm 22.05 is built with multiple-slurmd support, so one machine runs a controller
and several NodeName entries, each slurmd on its own port. The test submits
slurm/deploy_xPyD.sbatch with `sbatch --wait`, as a user would (the seed's variables in the
environment), and checks what pdctl did inside the job: the inventory plugin read the real
SLURM_JOB_NODELIST (expanded by the real `scontrol show hostnames`), the roles are the seed's,
the job's exit code is pdctl's.

The job's playbook is a local stand-in (tests/fixtures/pdctl/playbooks/slurm_job.yml): the
four Slurm "nodes" are all this machine, so there are no four hosts to deploy containers on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.pdctl.slurm_lab import missing_binaries, sbatch, slurm_lab

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SBATCH_SCRIPT = REPO / "slurm" / "deploy_xPyD.sbatch"
JOB_PLAYBOOK = REPO / "tests" / "fixtures" / "pdctl" / "playbooks" / "slurm_job.yml"
NODES = ["node1", "node2", "node3", "node4"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running one-machine Slurm cluster; yields the environment that talks to it."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm not installed ({', '.join(missing)}): "
                    "apt-get install slurmctld slurmd slurm-client")
    if os.geteuid() != 0:
        pytest.skip("slurmd must run as root to launch jobs as the submitting user")
    with slurm_lab(tmp_path_factory.mktemp("slurm"), NODES) as env:
        yield env


def _inventory(tmp_path: Path) -> Path:
    """The example inventory's plugin settings, with the real scontrol and local connections."""
    inv = tmp_path / "allocation.slurm.yml"
    inv.write_text("plugin: inferops.disagg.slurm\nhostlist_backend: scontrol\n"
                   "compose:\n  ansible_connection: \"'local'\"\n"
                   f"  ansible_python_interpreter: \"'{sys.executable}'\"\n")
    return inv


def _submit(slurm: dict[str, str], tmp_path: Path, nodes: int, **env: str):
    logs = tmp_path / "logs"
    job_env = {k: v for k, v in slurm.items() if not k.startswith(("SLURM_JOB", "xP", "yD"))}
    job_env.update({
        "MODEL_NAME": "Llama-3.1-8B-Instruct", "DOCKER_IMAGE_NAME": "example/sglang:test",
        "LOG_PATH": str(logs), "PD_STEPS": "deploy", "KEEP_SERVICE": "1",
        "PDCTL_INVENTORY": str(_inventory(tmp_path)),
        "PDCTL": str(Path(sys.executable).parent / "pdctl"),
        "PDCTL_ARGS": f"--playbook {JOB_PLAYBOOK}", **env})
    rc, job_id, output = sbatch(job_env, SBATCH_SCRIPT, nodes, tmp_path / "job.out", REPO)
    return rc, job_id, logs / job_id, output


def test_sbatch_deploys_with_the_seeds_roles(slurm, tmp_path):
    rc, job_id, job_dir, output = _submit(slurm, tmp_path, 4, xP="2", yD="1", KEEP_SERVICE="0")
    assert rc == 0, output
    # the teardown step ran at the end of the job, into its own run dir
    assert json.loads((job_dir / "down" / "summary.json").read_text())["command"] == "down"
    summary = json.loads((job_dir / "deploy" / "summary.json").read_text())
    assert summary["ok"] is True and summary["exit_code"] == 0
    assert sorted(summary["hosts"]) == NODES
    seen = {n: json.loads((job_dir / "deploy" / f"{n}.json").read_text()) for n in NODES}
    assert {n: (s["groups"], s["rank"]) for n, s in seen.items()} == {
        "node1": (["proxy", "slurm_allocation"], 0),
        "node2": (["prefill", "slurm_allocation"], 1),
        "node3": (["prefill", "slurm_allocation"], 2),
        "node4": (["decode", "slurm_allocation"], 3),
    }
    assert {(s["xp"], s["yd"], s["job"], s["model"], s["image"]) for s in seen.values()} == {
        (2, 1, job_id, "Llama-3.1-8B-Instruct", "example/sglang:test")}
    assert f"deploy_xPyD: job {job_id} nodes node[1-4] xP=2 yD=1" in output
    assert "== SUMMARY deploy: ok (exit 0" in output


def test_sbatch_too_small_allocation_fails_with_reason(slurm, tmp_path):
    rc, _job_id, job_dir, output = _submit(slurm, tmp_path, 4, xP="2", yD="2")
    assert rc == 3, output  # the job's exit code is pdctl's "deploy failed"
    summary = json.loads((job_dir / "deploy" / "summary.json").read_text())
    assert summary["exit_code"] == 3
    assert "allocation has 4 nodes; xP=2 + yD=2 + 1 proxy needs 5" in \
        summary["failures"][0]["message"]
    assert "pdctl deploy failed (exit 3)" in output


def test_sbatch_without_model_name_refuses(slurm, tmp_path):
    rc, _job_id, _job_dir, output = _submit(slurm, tmp_path, 4, MODEL_NAME="")
    assert rc == 1
    assert "MODEL_NAME must be set" in output
