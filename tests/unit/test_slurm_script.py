"""slurm/deploy_xPyD.sbatch without Slurm: how the job finds the collection and pdctl.

sbatch runs a copy of the script from Slurm's spool directory, so each test runs a copy from a
``spool/`` directory, in a bare environment (only the variables Slurm and the user would set),
with a fake ``pdctl`` (it logs its arguments and PDCTL_COLLECTION_ROOT) and a fake
``ansible-galaxy`` (it answers ``collection list inferops.disagg --format json`` like the real
one) first on PATH. The real job on a real Slurm is tests/integration/test_pdctl_slurm.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "slurm" / "deploy_xPyD.sbatch"

FAKE_PDCTL = """#!/bin/sh
printf '%s|%s|%s\\n' "$0" "${PDCTL_COLLECTION_ROOT:-}" "$*" >> "$FAKE_LOG"
[ "$1" = "${FAKE_PDCTL_FAIL:-}" ] && exit 3
exit 0
"""
FAKE_GALAXY = """#!/bin/sh
printf 'galaxy|%s\\n' "$*" >> "$FAKE_LOG"
if [ "$*" = "collection list inferops.disagg --format json" ] && [ -n "${FAKE_GALAXY_BASE:-}" ]
then
  printf '{"%s": {"inferops.disagg": {"version": "0.1.0"}}}\\n' "$FAKE_GALAXY_BASE"
else
  echo '{}'
fi
"""


def _exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _collection(root: Path, checkout: bool) -> Path:
    """A collection tree: playbooks/, the Slurm example inventory, galaxy.yml in a checkout."""
    (root / "playbooks").mkdir(parents=True)
    (root / "inventories" / "slurm-example").mkdir(parents=True)
    (root / "inventories" / "slurm-example" / "allocation.slurm.yml").write_text(
        "plugin: inferops.disagg.slurm\n")
    if checkout:
        (root / "galaxy.yml").write_text("namespace: inferops\nname: disagg\n")
    return root


class Job:
    """One run of the script as Slurm would start it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "calls.log"
        self.bin = tmp / "bin"
        self.submit = tmp / "submit"
        self.submit.mkdir()
        self.script = tmp / "spool" / "slurm_script"
        self.script.parent.mkdir()
        shutil.copy(SCRIPT, self.script)
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(tmp / "home"),
            "FAKE_LOG": str(self.log), "LOG_PATH": str(tmp / "logs"),
            "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[1-3]",
            "SLURM_SUBMIT_DIR": str(self.submit), "MODEL_NAME": "Qwen3-32B",
        }

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        self.proc = subprocess.run(["bash", str(self.script)], cwd=self.submit,
                                   env={**self.env, **env}, capture_output=True, text=True,
                                   timeout=60, check=False)
        return self.proc

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split("|", 2) for line in self.log.read_text().splitlines()]

    def pdctl_calls(self) -> list[tuple[str, str, list[str]]]:
        """(executable, PDCTL_COLLECTION_ROOT, argv) of every pdctl run."""
        return [(exe, root, argv.split()) for exe, root, argv in
                (c for c in self.calls() if c[0] != "galaxy")]


@pytest.fixture
def job(tmp_path: Path) -> Job:
    made = Job(tmp_path)
    _exe(made.bin / "pdctl", FAKE_PDCTL)
    _exe(made.bin / "ansible-galaxy", FAKE_GALAXY)
    return made


def _inventory(argv: list[str]) -> str:
    return argv[argv.index("-i") + 1]


def test_installed_collection_is_found_with_ansible_galaxy(job: Job):
    """Submitted from a directory that is no checkout: ansible-galaxy's collection is used."""
    base = job.tmp / "collections" / "ansible_collections"
    installed = _collection(base / "inferops" / "disagg", checkout=False)
    proc = job.run(FAKE_GALAXY_BASE=str(base))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = job.pdctl_calls()
    assert [argv[0] for _exe, _root, argv in calls] == ["deploy", "bench", "down"]
    assert {_inventory(argv) for _exe, _root, argv in calls} == {
        f"{installed}/inventories/slurm-example"}
    # pdctl runs the playbooks of the collection the inventory came from
    assert {root for _exe, root, _argv in calls} == {str(installed)}
    assert {exe for exe, _root, _argv in calls} == {str(job.bin / "pdctl")}
    assert ["galaxy", "collection list inferops.disagg --format json"] in job.calls()
    assert f"inventory {installed}/inventories/slurm-example, collection {installed}" \
        in proc.stdout


def test_checkout_submit_dir_wins_and_its_venv_pdctl(job: Job):
    checkout = _collection(job.submit, checkout=True)
    venv_pdctl = _exe(checkout / ".venv" / "bin" / "pdctl", FAKE_PDCTL)
    other = _collection(job.tmp / "other" / "inferops" / "disagg", checkout=False)
    proc = job.run(FAKE_GALAXY_BASE=str(other.parents[1]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = job.pdctl_calls()
    assert {(exe, root, _inventory(argv)) for exe, root, argv in calls} == {
        (str(venv_pdctl), str(checkout), f"{checkout}/inventories/slurm-example")}
    assert not [c for c in job.calls() if c[0] == "galaxy"]


def test_no_collection_anywhere_fails_with_the_fix(job: Job):
    proc = job.run()  # ansible-galaxy lists nothing, the submit directory is no checkout
    assert proc.returncode == 1
    assert "collection inferops.disagg not found" in proc.stderr
    assert f"{job.submit} is not a checkout" in proc.stderr
    assert "ansible-galaxy collection install" in proc.stderr
    assert "PDCTL_INVENTORY" in proc.stderr
    assert job.pdctl_calls() == []


def test_explicit_inventory_and_pdctl_need_no_collection_lookup(job: Job):
    (job.bin / "ansible-galaxy").unlink()
    inventory = job.tmp / "my-inventory"
    inventory.mkdir()
    proc = job.run(PDCTL_INVENTORY=str(inventory), PDCTL=str(job.bin / "pdctl"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {(root, _inventory(argv)) for _exe, root, argv in job.pdctl_calls()} == {
        ("", str(inventory))}   # pdctl finds its collection itself


def test_installed_collection_without_ansible_galaxy_on_path_uses_pdctls_bin(job: Job):
    """pip installs pdctl and ansible-galaxy into one bin/; PATH may hold only a link to pdctl
    (as pipx or ~/.local/bin make it)."""
    venv_bin = job.tmp / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (job.bin / "ansible-galaxy").rename(venv_bin / "ansible-galaxy")
    (job.bin / "pdctl").rename(venv_bin / "pdctl")
    (job.bin / "pdctl").symlink_to(venv_bin / "pdctl")
    base = job.tmp / "collections" / "ansible_collections"
    installed = _collection(base / "inferops" / "disagg", checkout=False)
    proc = job.run(FAKE_GALAXY_BASE=str(base))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {_inventory(argv) for _exe, _root, argv in job.pdctl_calls()} == {
        f"{installed}/inventories/slurm-example"}


def test_failing_step_is_the_exit_code_and_teardown_still_runs(job: Job):
    _collection(job.submit, checkout=True)
    proc = job.run(FAKE_PDCTL_FAIL="deploy")
    assert proc.returncode == 3
    assert [argv[0] for _exe, _root, argv in job.pdctl_calls()] == ["deploy", "down"]
    assert "pdctl deploy failed (exit 3)" in proc.stderr


@pytest.mark.parametrize(("gpus", "shown", "note"), [
    ("8", "GPUs per node 8", False),
    ("", "GPUs per node none allocated", True),
])
def test_gpu_allocation_is_reported(job: Job, gpus: str, shown: str, note: bool):
    _collection(job.submit, checkout=True)
    env = {"SLURM_JOB_PARTITION": "mi300x", "SLURM_JOB_ACCOUNT": "myacct"}
    if gpus:
        env["SLURM_GPUS_ON_NODE"] = gpus
    proc = job.run(**env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"partition mi300x, account myacct, {shown}" in proc.stdout
    assert ("the job holds no GPUs (no --gres=gpu:N)" in proc.stderr) is note


def test_sbatch_header_leaves_cluster_settings_to_the_command_line():
    """sbatch reads #SBATCH lines only before the first command; gres, partition and account
    are cluster-specific and come from the command line (or SBATCH_*), which override them."""
    lines = SCRIPT.read_text().splitlines()
    first_command = next(i for i, line in enumerate(lines)
                         if line.strip() and not line.startswith("#"))
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert directives and all(lines.index(d) < first_command for d in directives)
    options = {re.split(r"[ =]", d.split(None, 1)[1])[0] for d in directives}
    assert options == {"--job-name", "--ntasks-per-node", "--time", "--output"}
    assert "sbatch -N 5 --gres=gpu:8 -p mi300x -A myacct -t 04:00:00 slurm/deploy_xPyD.sbatch" \
        in SCRIPT.read_text()


def test_shell_syntax_and_shellcheck():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_status_step_reads_the_same_inventory(job: Job):
    _collection(job.submit, checkout=True)
    proc = job.run(PD_STEPS="deploy status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [argv[:3] for _exe, _root, argv in job.pdctl_calls()] == [
        ["deploy", "-i", f"{job.submit}/inventories/slurm-example"],
        ["status", "-i", f"{job.submit}/inventories/slurm-example"],
        ["down", "-i", f"{job.submit}/inventories/slurm-example"]]
    assert (job.tmp / "logs" / "4242" / "status.json").exists()
