"""pdctl for real: the console script, ansible-runner, ansible-playbook, local test playbooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "pdctl"
PDCTL = Path(sys.executable).parent / "pdctl"
HOSTS = FIXTURES / "inventory" / "hosts.yml"


def pdctl(*argv: str, cwd: Path = REPO, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("xP", "yD", "SLURM_JOB_NODELIST")}
    return subprocess.run([str(PDCTL), *argv], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def playbook(name: str) -> str:
    return str(FIXTURES / "playbooks" / name)


def test_ok_run_exit_0_json_and_run_dir(tmp_path):
    run_dir = tmp_path / "run-ok"
    proc = pdctl("deploy", "-i", str(HOSTS), "--playbook", playbook("ok.yml"), "--json",
                 "--run-dir", str(run_dir), "-e", "extra_marker=1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["status"] == "successful"
    assert sorted(doc["hosts"]) == ["decode-1", "prefill-1", "prefill-2", "proxy-1"]
    assert all(h["failed"] == 0 and h["unreachable"] == 0 for h in doc["hosts"].values())
    assert doc["hosts"]["proxy-1"] == {"ok": 4, "changed": 1, "failed": 0, "unreachable": 0,
                                       "skipped": 0, "rescued": 0, "ignored": 0}
    # endpoints published by the playbook with set_stats
    assert doc["endpoints"] == {"router": "http://proxy-1:18000",
                                "prefill": ["prefill-1", "prefill-2"], "decode": ["decode-1"]}
    assert doc["failures"] == []
    assert doc["timings"]["tasks_count"] == 4
    slowest = doc["timings"]["slowest_tasks"][0]
    assert slowest["task"] == "Wait for worker /health" and slowest["duration_s"] >= 2
    # the run dir is shared: runner artifacts, the playbook's own files, pdctl's files
    assert doc["run_dir"] == str(run_dir) and doc["run_id"] == "run-ok"
    assert (run_dir / "marker-decode-1.txt").read_text() == "run-ok\n"
    assert (run_dir / "artifacts" / "deploy" / "stdout").is_file()
    assert (run_dir / "artifacts" / "deploy" / "rc").read_text().strip() == "0"
    assert json.loads((run_dir / "summary.json").read_text()) == doc
    log = (run_dir / "pdctl.log").read_text()
    assert "waiting for worker /health (attempt 2/6)" in log  # every retry is logged
    # progress went to stderr, one line per task and host
    assert "  changed     decode-1 | Write a marker into the run dir" in proc.stderr
    assert "waiting for worker /health (attempt 1/6)" in proc.stderr
    assert "== SUMMARY deploy: ok (exit 0," in proc.stderr


def test_ok_run_human_output(tmp_path):
    proc = pdctl("deploy", "-i", str(HOSTS), "--playbook", playbook("ok.yml"),
                 "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pdctl deploy: ")
    assert "== PLAY Deploy (pdctl test)" in lines
    assert sum(1 for ln in lines if "| Say hello" in ln) == 4
    start = next(i for i, ln in enumerate(lines) if ln.startswith("== SUMMARY deploy: ok (exit 0,"))
    summary = lines[start:]
    assert summary[1].split()[:4] == ["host", "ok", "changed", "failed"]
    assert "  router: http://proxy-1:18000" in summary


def test_failing_deploy_exit_3_names_host_task_message(tmp_path):
    proc = pdctl("deploy", "-i", str(HOSTS), "--playbook", playbook("fail.yml"), "--json",
                 "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 3 and doc["status"] == "failed"
    assert doc["exit_meaning"] == "deploy failed"
    [failure] = doc["failures"]
    assert failure["host"] == "decode-1"
    assert failure["task"] == "Check worker health"
    assert failure["message"] == ("decode-1: container pd-decode-decode-1 never answered /health "
                                  "on port 30002")
    assert failure["action"] == "ansible.builtin.fail"
    assert doc["hosts"]["decode-1"]["failed"] == 1 and doc["hosts"]["proxy-1"]["failed"] == 0
    assert "FAILED      decode-1 | Check worker health" in proc.stderr


@pytest.mark.parametrize(("command", "code"), [("preflight", 2), ("bench", 4), ("down", 1),
                                               ("logs", 1)])
def test_exit_code_per_command(tmp_path, command, code):
    proc = pdctl(command, "-i", str(HOSTS), "--playbook", playbook("fail.yml"), "--json",
                 "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == code, proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == code


def test_broken_inventory_names_the_cause(tmp_path):
    proc = pdctl("deploy", "-i", str(FIXTURES / "inventory" / "broken.slurm.yml"), "--playbook",
                 playbook("ok.yml"), "--json", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    [failure] = doc["failures"]
    assert failure["host"] is None
    assert "failed to parse inventory source" in failure["message"]
    assert "allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5" in failure["message"]
    assert doc["hosts"] == {}


def test_unreachable_host(tmp_path):
    proc = pdctl("deploy", "-i", str(FIXTURES / "inventory" / "unreachable.yml"), "--playbook",
                 playbook("ok.yml"), "--json", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    [failure] = doc["failures"]
    assert failure["host"] == "ghost-1" and failure["unreachable"] is True
    assert "Connection refused" in failure["message"]
    assert doc["hosts"]["ghost-1"]["unreachable"] == 1


def test_timeout_names_the_running_task(tmp_path):
    proc = pdctl("deploy", "-i", str(HOSTS), "--playbook", playbook("slow.yml"), "--json",
                 "--timeout", "4", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "timeout"
    assert doc["failures"][0]["message"] == ("timed out after 4s while running 'Sleep' on "
                                             "proxy-1")


def test_missing_inventory_is_usage_error(tmp_path):
    proc = pdctl("deploy", "-i", str(tmp_path / "nope"), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["failures"][0]["message"] == f"inventory '{tmp_path / 'nope'}' does not exist"


def test_default_run_dir_under_runs(tmp_path):
    proc = pdctl("deploy", "-i", str(HOSTS), "--playbook", playbook("ok.yml"), "--json",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and run_dir.name == doc["run_id"]
    assert "-deploy-" in doc["run_id"] and (run_dir / "summary.json").is_file()


def test_slurm_inventory_with_xp_yd_flags(tmp_path):
    """--xp/--yd reach the slurm inventory plugin (as xP/yD) and the playbook (disagg_xp/yd)."""
    inv = tmp_path / "alloc.slurm.yml"
    inv.write_text("plugin: inferops.disagg.slurm\nnodelist: node[1-4]\n"
                   "compose:\n  ansible_connection: \"'local'\"\n")
    show = tmp_path / "show.yml"
    show.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.assert:\n        that:\n"
                    "          - \"groups['prefill'] == ['node2', 'node3']\"\n"
                    "          - \"groups['decode'] == ['node4']\"\n"
                    "          - disagg_xp | int == 2\n")
    proc = pdctl("deploy", "-i", str(inv), "--playbook", str(show), "--xp", "2", "--yd", "1",
                 "--json", "--run-dir", str(tmp_path / "r"), "-e",
                 "ansible_python_interpreter=" + sys.executable)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(json.loads(proc.stdout)["hosts"]) == ["node1", "node2", "node3", "node4"]


@pytest.mark.parametrize("whole_group", [False, True], ids=["pdctl-only", "terminal-ctrl-c"])
def test_interrupt_cancels_and_still_reports(tmp_path, whole_group):
    """SIGINT to pdctl (or to its whole process group, as a terminal's Ctrl-C does): the run is
    canceled, the summary is written and names the task that was running; exit 1."""
    import signal
    import time

    run_dir = tmp_path / "r"
    proc = subprocess.Popen([str(PDCTL), "deploy", "-i", str(HOSTS), "--playbook",
                             playbook("slow.yml"), "--json", "--run-dir", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)
    events = run_dir / "artifacts" / "deploy" / "job_events"

    def task_started() -> bool:
        return any('"runner_on_start"' in p.read_text() for p in events.glob("*.json"))

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if task_started():
            break
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the slow task never started")
    if whole_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    doc = json.loads(out)
    assert doc["status"] == "canceled" and doc["exit_code"] == 1
    assert doc["failures"][0]["message"] == ("canceled (interrupted) while running 'Sleep' on "
                                             "proxy-1")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "canceled"
