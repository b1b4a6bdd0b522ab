"""Integration: the production path rehearsed on replayed MI300X + CX-7 hosts (issue 11, item 6).

The test clones ``inventories/rehearsal-mi300x`` as its own cluster (``pdx``, 172.29.225.0/24),
whose four host containers replay ``tests/fixtures/preflight/trees/replay-fit`` (mounted at
/replay, their amd-smi, rocm-smi and ibv_devinfo replays on PATH). Order matters: the tests run
top to bottom on one cluster.

* The fit deploy: preflight passes in enforce mode on every host; each prefill and decode
  worker runs with ``--disaggregation-ib-device`` = the replayed host's ACTIVE mlx5 devices minus
  mlx5_1 (its netdev carries the default route, eth0) and mlx5_6 (disagg_ib_device_exclude),
  ``MC_GID_INDEX`` 3 and ``NCCL_SOCKET_IFNAME``/``GLOO_SOCKET_IFNAME`` eth0; the engine says it
  got them and moves KV over TCP; a request through the router works.
* Three unfit replayed hosts, each made from replay-fit by ``build_trees.py --variant`` and put
  on one host (``cluster.py up`` recreates only that host): a port DOWN, a GID index that
  differs between the two decode hosts, 7 GPUs. Each deploy fails naming host, check and fix,
  and no worker container exists afterwards. How fast they stop is measured by
  bench/unfit_stop_time.py, not asserted here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER_PY = REPO / "scripts" / "cluster.py"
BUILD_TREES = REPO / "tests" / "fixtures" / "preflight" / "build_trees.py"
REPLAY_FIT = "tests/fixtures/preflight/trees/replay-fit"
CLUSTER = "pdx"
SUBNET = "172.29.225.0/24"
LABEL = f"io.inferops.disagg.rehearsal={CLUSTER}"
ROUTER = "http://172.29.225.10:30000"
HOSTS = ("proxy-1", "prefill-1", "decode-1", "decode-2")
#: replay-fit's ACTIVE Ethernet devices minus mlx5_1 (default route) and mlx5_6 (excluded).
IB_DEVICES = "mlx5_0,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_9"

if shutil.which("docker") is None:
    pytest.skip("needs the Docker engine", allow_module_level=True)


def _images_env() -> Path:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "rehearsal_image.py"),
                          "--env-file"], capture_output=True, text=True, check=True).stdout
    return Path(out.strip())


def _run(*argv: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run([str(a) for a in argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def _deploy(inventory: Path, runs: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    return _run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / "deploy.yml",
                "-e", f"disagg_runs_dir={runs}", "-e", f"disagg_run_id={run_id}")


def _components() -> list[dict]:
    """docker inspect of this cluster's deploy containers (router, workers, etcd)."""
    names = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={LABEL}", "--filter",
         "label=io.inferops.disagg.component", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True).stdout.split()
    if not names:
        return []
    return json.loads(subprocess.run(["docker", "inspect", *names], capture_output=True,
                                     text=True, check=True).stdout)


def _workers() -> list[dict]:
    return [c for c in _components()
            if c["Config"]["Labels"]["io.inferops.disagg.component"] in ("prefill", "decode")]


def _set_trees(inventory: Path, trees: dict[str, str]) -> None:
    """Point each host's rehearsal_replay_tree at replay-fit, or at ``trees[host]``."""
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    groups = hosts["all"]["children"]["rehearsal_hosts"]["children"]
    for group in groups.values():
        for host, hostvars in group["hosts"].items():
            hostvars["rehearsal_replay_tree"] = trees.get(host, REPLAY_FIT)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The rehearsal-mi300x cluster named pdx; removed (and checked removed) afterwards."""
    inventory = tmp_path_factory.mktemp("pdx") / "rehearsal-mi300x"
    _ok(_run(sys.executable, CLUSTER_PY, "clone", "-i", REPO / "inventories" / "rehearsal-mi300x",
             "--dest", inventory, "--name", CLUSTER, "--subnet", SUBNET))
    _run(sys.executable, CLUSTER_PY, "down", "-i", inventory)  # leftovers of an aborted run
    try:
        _ok(_run(sys.executable, CLUSTER_PY, "up", "-i", inventory, timeout=1200))
        images = dict(line.split("=", 1) for line in _images_env().read_text().split())
        (inventory / "group_vars" / "all" / "zz_test.yml").write_text(
            yaml.safe_dump({"disagg_image": images["REHEARSAL_IMAGE"]}))
        yield inventory
    finally:
        _run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / "teardown.yml")
        down = _run(sys.executable, CLUSTER_PY, "down", "-i", inventory)
    assert down.returncode == 0, down.stderr
    left = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label={LABEL}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert not left, f"containers of the {CLUSTER} cluster left behind: {left}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def test_host_replays_its_tree(cluster: Path) -> None:
    """The replayed tools are on the host's PATH in an SSH session, as on a real host."""
    key = REPO / ".cache" / "rehearsal" / "ssh" / "id_ed25519"
    proc = subprocess.run(
        ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@172.29.225.21",
         "command -v amd-smi ibv_devinfo && amd-smi version --json >/dev/null"
         " && ibv_devinfo -v | grep -c hca_id && ip route show default"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["/usr/local/bin/amd-smi", "/usr/local/bin/ibv_devinfo"]
    assert "8" in lines and "dev eth0" in lines[-1], proc.stdout


def test_fit_deploy_passes_enforced_preflight_and_passes_the_derived_values(
    cluster: Path, runs: Path
) -> None:
    out = _ok(_deploy(cluster, runs, "fit"))
    for host in HOSTS:
        report = json.loads((runs / "fit" / "preflight" / f"{host}.json").read_text())
        assert (report["mode"], report["fit"], report["findings"]) == ("enforce", True, []), report
    workers = _workers()
    assert sorted(w["Config"]["Labels"]["io.inferops.disagg.host"] for w in workers) == sorted(
        HOSTS[1:])
    for worker in workers:
        name = worker["Name"].lstrip("/")
        argv = worker["Config"]["Cmd"]
        assert argv.count("--disaggregation-ib-device") == 1, (name, argv)
        assert argv[argv.index("--disaggregation-ib-device") + 1] == IB_DEVICES, (name, argv)
        env = dict(item.split("=", 1) for item in worker["Config"]["Env"])
        assert env["MC_GID_INDEX"] == "3", (name, env)
        for var in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
            assert env[var] == "eth0" and "mlx5" not in env[var], (name, var, env[var])
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True,
                              check=True)
        assert (f"RDMA settings received: --disaggregation-ib-device {IB_DEVICES}, MC_GID_INDEX 3;"
                " not used: the rehearsal engine moves KV over TCP") in logs.stdout + logs.stderr
    # The deploy summary says where each value came from.
    assert "--disaggregation-ib-device mlx5_0,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_9" in out
    assert "mlx5_1 (carries the default route (eth0))" in out, out[-4000:]
    r = requests.post(f"{ROUTER}/generate", timeout=30,
                      json={"text": "Let me tell you a story",
                            "sampling_params": {"max_new_tokens": 8}})
    assert r.status_code == 200 and r.json()["text"], r.text


def test_plan_shows_the_derived_values_and_changes_nothing(cluster: Path, runs: Path) -> None:
    """pdctl plan on the deployed cluster: every container unchanged, each worker's argv and env
    with the replayed host's RDMA devices, MC_GID_INDEX and socket interface, and the derived
    launch settings with their sources."""
    proc = _run(BIN / "pdctl", "plan", "-i", cluster, "--json", "--run-dir", runs / "plan")
    assert proc.returncode == 0, proc.stderr[-4000:]
    plan = json.loads(proc.stdout)
    assert plan["complete"] and plan["counts"]["unchanged"] == len(HOSTS), plan["counts"]
    for host in HOSTS[1:]:
        (worker,) = plan["hosts"][host]["containers"]
        argv = worker["argv"]
        assert argv[argv.index("--disaggregation-ib-device") + 1] == IB_DEVICES, (host, argv)
        assert worker["env"]["MC_GID_INDEX"] == "3", host
        assert worker["env"]["NCCL_SOCKET_IFNAME"] == worker["env"]["GLOO_SOCKET_IFNAME"] == "eth0"
        settings = plan["hosts"][host]["launch_settings"]
        assert (settings["mc_gid_index"], settings["socket_ifname"]) == (3, "eth0"), settings
        assert {"name": "mlx5_1", "reason": "carries the default route (eth0)"} in \
            settings["ib_devices_left_out"], settings


#: Which gate stops each unfit host, and what it prints (host, check, fix).
UNFIT = [
    pytest.param("replay-port-down", "prefill-1",
                 ["prefill-1: rdma.port_state: found mlx5_3/1 DOWN (Disabled), expected ACTIVE "
                  "on every port; fix: check the cable and switch port (`ip link show ens14np0`",
                  "preflight (enforce) failed on prefill-1", "Nothing was started on any host",
                  "KV path not probed: prefill-1 is already unfit"],
                 id="port-down"),
    pytest.param("replay-gid-index-5", "decode-2",
                 ["launch.mc_gid_index: the decode hosts would use different MC_GID_INDEX values "
                  "(decode-1 = 3; decode-2 = 5); fix: give every decode host the same GID table",
                  "(nothing was started; docs/derived-settings.md)",
                  "KV path not probed: the worker hosts of one role disagree"],
                 id="gid-index-differs"),
    pytest.param("replay-7gpu", "decode-1",
                 ["decode-1: gpu.count: found 7 GPUs (0000:0c:00.0, 0000:22:00.0, 0000:38:00.0, "
                  "0000:5c:00.0, 0000:9f:00.0, 0000:af:00.0, 0000:bf:00.0), expected 8 GPUs; fix: "
                  "look for the missing GPU",
                  "preflight (enforce) failed on decode-1", "Nothing was started on any host",
                  "KV path not probed: decode-1 is already unfit"],
                 id="7-gpus"),
]


@pytest.mark.parametrize(("variant", "host", "expected"), UNFIT)
def test_unfit_host_stops_the_deploy_before_any_worker(
    cluster: Path, runs: Path, tmp_path: Path, variant: str, host: str, expected: list[str]
) -> None:
    if _components():  # the fit deploy's containers; the unfit deploys leave none
        _ok(_run(BIN / "ansible-playbook", "-i", cluster, REPO / "playbooks" / "teardown.yml"))
    assert _components() == []
    tree = tmp_path / variant
    _ok(_run(sys.executable, BUILD_TREES, "--variant", variant, "--dest", tree))
    _set_trees(cluster, {host: str(tree)})
    up = _run(sys.executable, CLUSTER_PY, "up", "-i", cluster, timeout=600)
    _ok(up)
    assert re.search(rf"{host}: {CLUSTER}-{host} at \S+ recreated, replays {tree}$", up.stderr,
                     re.M), up.stderr  # the host whose tree changed is recreated
    started = time.monotonic()
    proc = _deploy(cluster, runs, variant)
    seconds = time.monotonic() - started
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0, out[-4000:]
    for text in expected:
        assert text in out, (text, proc.stdout[-6000:])
    assert _components() == [], f"a deploy container was created ({seconds:.1f} s)"
