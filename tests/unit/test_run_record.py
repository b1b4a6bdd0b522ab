"""playbooks/run_record.yml: runs started in the same second never share a run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_generated_run_ids_never_share_a_directory(tmp_path):
    inventory = tmp_path / "hosts"
    inventory.write_text(f"localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    runs = tmp_path / "runs"
    procs = [subprocess.Popen([str(BIN / "ansible-playbook"), "-i", str(inventory),
                               str(REPO / "playbooks" / "run_record.yml"),
                               "-e", f"disagg_runs_dir={runs}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    made = sorted(p.name for p in runs.iterdir())
    assert len(made) == 3, made  # three runs, three directories (4 random hex digits each)
    assert all(len(name.rsplit("-", 1)[1]) == 4 for name in made), made


def test_named_run_id_is_the_callers(tmp_path):
    """-e disagg_run_id (pdctl's) is used as given: no directory is claimed for it here."""
    inventory = tmp_path / "hosts"
    inventory.write_text(f"localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory),
                           str(REPO / "playbooks" / "run_record.yml"),
                           "-e", f"disagg_runs_dir={tmp_path / 'runs'}", "-e",
                           "disagg_run_id=named"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped=2" in proc.stdout and not (tmp_path / "runs").exists()
