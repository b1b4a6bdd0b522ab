"""pdctl against the rehearsal cluster (4 SSH-reachable host containers): deploy -> status ->
down, an inventory that must fail before anything starts, and the whole Slurm path (sbatch ->
the inventory plugin -> pdctl deploy/status/down) with a real one-machine Slurm whose four
nodes are mapped onto the rehearsal hosts. Needs Docker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fixtures.pdctl.slurm_lab import missing_binaries, sbatch, slurm_lab

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
NAME, PREFIX = "pdp", "172.29.223"
ROUTER = f"http://{PREFIX}.10:30000"
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
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Its own 2P1D rehearsal cluster (a clone named pdp): neither disturbs nor depends on the
    demo cluster or on other tests' clusters; removed afterwards."""
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True,
                                                    check=False).returncode != 0:
        pytest.skip("Docker engine not reachable")
    inventory = tmp_path_factory.mktemp("pdp") / "rehearsal"
    subprocess.run([*CLUSTER, "clone", "--dest", str(inventory), "--name", NAME, "--subnet",
                    f"{PREFIX}.0/24"], check=True, capture_output=True, cwd=REPO)
    subprocess.run([*CLUSTER, "down", "-i", str(inventory)], capture_output=True, cwd=REPO,
                   check=False)  # leftovers of an aborted run
    try:
        up = subprocess.run([*CLUSTER, "up", "-i", str(inventory)], capture_output=True,
                            text=True, cwd=REPO, timeout=1800, check=False)
        assert up.returncode == 0, \
            f"cluster.py up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        yield inventory
    finally:
        subprocess.run([*CLUSTER, "down", "-i", str(inventory)], capture_output=True, cwd=REPO,
                       timeout=600, check=False)


def test_deploy_status_down(cluster, tmp_path):
    code, doc, err = pdctl("deploy", "-i", str(cluster), "--run-dir", str(tmp_path / "deploy"))
    assert code == 0, f"{json.dumps(doc['failures'], indent=1)}\n{err[-4000:]}"
    assert doc["ok"] is True and doc["status"] == "successful"
    workers = {"proxy-1", "prefill-1", "prefill-2", "decode-1"}
    assert workers <= set(doc["hosts"])
    assert all(doc["hosts"][h]["failed"] == 0 and doc["hosts"][h]["unreachable"] == 0
               for h in workers)
    assert doc["endpoints"]["router"] == ROUTER
    assert [e["host"] for e in doc["endpoints"]["prefill"]] == ["prefill-1", "prefill-2"]
    assert doc["timings"]["total_s"] > 0 and doc["timings"]["slowest_tasks"]
    # the deploy's collect_logs wrote into pdctl's run dir: <runs_dir>/<run_id>/<host>/
    assert list((tmp_path / "deploy" / "decode-1").glob("*.log"))
    assert "== SUMMARY deploy: ok" in err

    code, status, _ = pdctl("status", "-i", str(cluster), timeout=60)
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

    # one tiny benchmark point through pdctl: the results land in pdctl's run dir
    code, doc, err = pdctl("bench", "-i", str(cluster), "--run-dir", str(tmp_path / "bench"),
                           "-e", '{"benchmark_concurrency": [2], "benchmark_presets": '
                                 '[{"name": "tiny", "isl": 64, "osl": 8}]}')
    assert code == 0, f"{json.dumps(doc['failures'], indent=1)}\n{err[-4000:]}"
    assert doc["endpoints"]["router"] == ROUTER
    assert list((tmp_path / "bench" / "bench" / "results").iterdir())

    code, doc, err = pdctl("down", "-i", str(cluster), "--run-dir", str(tmp_path / "down"))
    assert code == 0, f"{json.dumps(doc['failures'], indent=1)}\n{err[-3000:]}"
    code, status, _ = pdctl("status", "-i", str(cluster), timeout=60)
    assert code == 1
    assert status["problems"][0].startswith(f"router {ROUTER}: /readiness")


def test_inventory_without_decode_fails_before_anything_starts(cluster, tmp_path):
    inv = tmp_path / "inventory"
    shutil.copytree(cluster, inv)
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    groups = hosts["all"]["children"]["rehearsal_hosts"]["children"]
    groups["decode"] = {"hosts": {}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    # this cluster's containers only: other test files run their own clusters meanwhile (xdist)
    mine = ["docker", "ps", "-aq", "--filter", f"label=io.inferops.disagg.rehearsal={NAME}"]
    before = subprocess.run(mine, capture_output=True, text=True).stdout
    code, doc, err = pdctl("deploy", "-i", str(inv), "--run-dir", str(tmp_path / "run"),
                           "-e", f"rehearsal_cluster_dir={REPO / '.cache' / 'rehearsal'}")
    assert code == 3, err[-3000:]
    assert doc["ok"] is False and doc["exit_meaning"] == "deploy failed"
    messages = " ".join(f["message"] for f in doc["failures"])
    assert "inventory group 'decode' is empty" in messages, doc["failures"]
    assert all(f["task"] for f in doc["failures"]), doc["failures"]
    after = subprocess.run(mine, capture_output=True, text=True).stdout
    assert sorted(after.split()) == sorted(before.split())  # nothing was started


# Slurm node -> rehearsal host it stands for (rank order: proxy, prefill, prefill, decode).
SLURM_NODES = {"node1": "proxy-1", "node2": "prefill-1", "node3": "prefill-2",
               "node4": "decode-1"}


def _slurm_inventory(tmp_path: Path, inventory: Path) -> Path:
    """inventories/slurm-example's plugin file next to the rehearsal group_vars; host_vars map
    each Slurm node onto its rehearsal host container (address and network namespace)."""
    inv = tmp_path / "slurm-inventory"
    shutil.copytree(inventory / "group_vars", inv / "group_vars")
    (inv / "allocation.slurm.yml").write_text(
        (REPO / "inventories" / "slurm-example" / "allocation.slurm.yml").read_text()
        + "groups:\n  rehearsal_hosts: \"true\"\n")
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    address = {name: vars_["ansible_host"]
               for group in hosts["all"]["children"]["rehearsal_hosts"]["children"].values()
               for name, vars_ in group["hosts"].items()}
    (inv / "host_vars").mkdir()
    for node, host in SLURM_NODES.items():
        (inv / "host_vars" / f"{node}.yml").write_text(yaml.safe_dump({
            "ansible_host": address[host], "disagg_network_mode": f"container:{NAME}-{host}"}))
    return inv


def test_sbatch_deploys_on_the_rehearsal_cluster(cluster, tmp_path):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm not installed ({', '.join(missing)})")
    logs = tmp_path / "logs"
    with slurm_lab(tmp_path / "slurm", list(SLURM_NODES)) as env:
        env = {k: v for k, v in env.items() if not k.startswith(("SLURM_JOB", "xP", "yD"))}
        env.update({"xP": "2", "yD": "1", "MODEL_NAME": "rehearsal-tiny", "LOG_PATH": str(logs),
                    "PD_STEPS": "deploy status", "PDCTL": str(PDCTL),
                    "PDCTL_INVENTORY": str(_slurm_inventory(tmp_path, cluster)),
                    "PDCTL_ARGS": f"-e rehearsal_cluster_dir={REPO / '.cache' / 'rehearsal'}"})
        rc, job_id, output = sbatch(env, REPO / "slurm" / "deploy_xPyD.sbatch", 4,
                                    tmp_path / "job.out", REPO)
    job_dir = logs / job_id
    assert rc == 0, output[-6000:]
    deploy = json.loads((job_dir / "deploy" / "summary.json").read_text())
    assert deploy["ok"] is True and set(SLURM_NODES) <= set(deploy["hosts"])
    assert deploy["endpoints"]["router"] == ROUTER
    status = json.loads((job_dir / "status.json").read_text())
    assert status["ok"] is True, status["problems"]
    assert sorted((w["role"], w["host"]) for w in status["workers"]) == [
        ("decode", "node4"), ("prefill", "node2"), ("prefill", "node3")]
    decode = next(w for w in status["workers"] if w["host"] == "node4")
    assert decode["kv"]["kv_transfers_received"] >= 1  # the deploy's smoke test went through
    down = json.loads((job_dir / "down" / "summary.json").read_text())
    assert down["ok"] is True
    left = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                          text=True).stdout.split()
    assert not [name for name in left if name.endswith(tuple(f"-{n}" for n in SLURM_NODES))]
