"""pdctl against the rehearsal cluster (4 SSH-reachable host containers): deploy -> status ->
down, and an inventory that must fail before anything starts. Needs Docker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "rehearsal"
CLUSTER = [sys.executable, str(REPO / "scripts" / "cluster.py")]
PDCTL = Path(sys.executable).parent / "pdctl"


def pdctl(*argv: str, timeout: float = 900) -> tuple[int, dict, str]:
    proc = subprocess.run([str(PDCTL), *argv, "--json"], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pdctl {argv[0]} printed no JSON (exit {proc.returncode}):\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.returncode, doc, proc.stderr


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """The rehearsal cluster up; stopped again only if this module started it."""
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True,
                                                    check=False).returncode != 0:
        pytest.skip("Docker engine not reachable")
    was_up = subprocess.run([*CLUSTER, "status"], capture_output=True, cwd=REPO,
                            check=False).returncode == 0
    if not was_up:
        up = subprocess.run([*CLUSTER, "up"], capture_output=True, text=True, cwd=REPO,
                            timeout=1800, check=False)
        assert up.returncode == 0, \
            f"cluster.py up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
    yield
    if not was_up:
        subprocess.run([*CLUSTER, "down"], capture_output=True, cwd=REPO, timeout=600,
                       check=False)


def test_deploy_status_down(cluster, tmp_path):
    code, doc, err = pdctl("deploy", "-i", str(INVENTORY), "--run-dir", str(tmp_path / "deploy"))
    assert code == 0, f"{json.dumps(doc['failures'], indent=1)}\n{err[-4000:]}"
    assert doc["ok"] is True and doc["status"] == "successful"
    workers = {"proxy-1", "prefill-1", "prefill-2", "decode-1"}
    assert workers <= set(doc["hosts"])
    assert all(doc["hosts"][h]["failed"] == 0 and doc["hosts"][h]["unreachable"] == 0
               for h in workers)
    assert doc["endpoints"]["router"] == "http://172.29.213.10:30000"
    assert [e["host"] for e in doc["endpoints"]["prefill"]] == ["prefill-1", "prefill-2"]
    assert doc["timings"]["total_s"] > 0 and doc["timings"]["slowest_tasks"]
    # the deploy's collect_logs wrote into pdctl's run dir: <runs_dir>/<run_id>/<host>/
    assert list((tmp_path / "deploy" / "decode-1").glob("*.log"))
    assert "== SUMMARY deploy: ok" in err

    code, status, _ = pdctl("status", "-i", str(INVENTORY), timeout=60)
    assert code == 0, status["problems"]
    by_host = {w["host"]: w for w in status["workers"]}
    assert sorted((w["role"], w["host"]) for w in status["workers"]) == [
        ("decode", "decode-1"), ("prefill", "prefill-1"), ("prefill", "prefill-2")]
    assert all(w["health"] == 200 and w["registered"] and w["router_healthy"]
               for w in status["workers"])
    assert status["router"]["readiness"] == 200
    # the deploy's smoke test sent one /generate: KV went prefill -> decode through Mooncake
    assert by_host["decode-1"]["kv"]["kv_transfers_received"] >= 1
    assert by_host["decode-1"]["kv"]["kv_bytes_received"] > 0
    sent = sum(by_host[h]["kv"]["kv_bytes_sent"] for h in ("prefill-1", "prefill-2"))
    assert sent == by_host["decode-1"]["kv"]["kv_bytes_received"]

    code, doc, err = pdctl("down", "-i", str(INVENTORY), "--run-dir", str(tmp_path / "down"))
    assert code == 0, f"{json.dumps(doc['failures'], indent=1)}\n{err[-3000:]}"
    code, status, _ = pdctl("status", "-i", str(INVENTORY), timeout=60)
    assert code == 1
    assert status["problems"][0].startswith("router http://172.29.213.10:30000: /readiness")


def test_inventory_without_decode_fails_before_anything_starts(cluster, tmp_path):
    inv = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inv)
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    groups = hosts["all"]["children"]["rehearsal_hosts"]["children"]
    groups["decode"] = {"hosts": {}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    before = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True).stdout
    code, doc, err = pdctl("deploy", "-i", str(inv), "--run-dir", str(tmp_path / "run"),
                           "-e", f"rehearsal_cluster_dir={REPO / '.cache' / 'rehearsal'}")
    assert code == 3, err[-3000:]
    assert doc["ok"] is False and doc["exit_meaning"] == "deploy failed"
    messages = " ".join(f["message"] for f in doc["failures"])
    assert "inventory group 'decode' is empty" in messages, doc["failures"]
    assert all(f["task"] for f in doc["failures"]), doc["failures"]
    after = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True).stdout
    assert sorted(after.split()) == sorted(before.split())  # nothing was started
