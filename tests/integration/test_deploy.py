"""Integration: playbooks/deploy.yml on a 2P1D rehearsal cluster of SSH-reached host containers.

The test makes its own cluster (``scripts/cluster.py clone`` of inventories/rehearsal, named
``pdt`` on its own subnet), so it neither disturbs nor depends on the demo cluster, and pins the
rehearsal image it starts with (a concurrent image rebuild would otherwise change the image under
the idempotence checks). Order matters: the tests run top to bottom on one cluster.

Acceptance covered (issue 4): deploy (as site.yml's deploy stage, with the benchmark after it)
and a request through the router; a second deploy changes nothing on any host and restarts
nothing; a decode-only change restarts only decode, and a prefill killed meanwhile comes back in
the same deploy, named in the output; bad inventories fail before anything starts, naming the
group and the fix; a never-healthy worker fails within its timeout naming host, container and
port with its last log lines; etcd mode; teardown leaves nothing of the cluster behind.
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

from tests.integration.rehearsal import Load

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER = "pdt"
SUBNET = "172.29.214.0/24"
LABEL = f"io.inferops.disagg.rehearsal={CLUSTER}"
ROUTER = "http://172.29.214.10:30000"
NEVER_READY_TIMEOUT = 15

if shutil.which("docker") is None:
    pytest.skip("needs the Docker engine", allow_module_level=True)


def _images_env() -> Path:
    """Where scripts/rehearsal_image.py keeps the image refs (its work directory)."""
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "rehearsal_image.py"),
                          "--env-file"], capture_output=True, text=True, check=True).stdout
    return Path(out.strip())


def _run(*argv: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(a) for a in argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _playbook(
    inventory: Path, playbook: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = _run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / playbook, *extra)
    return proc, time.monotonic() - started


def _recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP of the last play: host -> {ok, changed, failed, ...}."""
    recap: dict[str, dict[str, int]] = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return recap


def _changed(output: str) -> list[str]:
    """Each task that reported a change, as 'TASK name: changed: [host]' (assertion messages)."""
    found: list[str] = []
    task = ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed: ["):
            found.append(f"{task}: {line.split(' =>', 1)[0]}")
    return found


def _docker_names(kind: str) -> set[str]:
    args = {
        "container": ["ps", "-a", "--format", "{{.Names}}"],
        "network": ["network", "ls", "--format", "{{.Name}}"],
        "volume": ["volume", "ls", "--format", "{{.Name}}"],
    }[kind]
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def _containers() -> dict[str, dict]:
    """This cluster's deploy containers: name -> {started, running, component, host}."""
    names = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={LABEL}",
            "--filter",
            "label=io.inferops.disagg.component",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not names:
        return {}
    info = json.loads(
        subprocess.run(
            ["docker", "inspect", *names], capture_output=True, text=True, check=True
        ).stdout
    )
    return {
        c["Name"].lstrip("/"): {
            "started": c["State"]["StartedAt"],
            "running": c["State"]["Running"],
            "component": c["Config"]["Labels"]["io.inferops.disagg.component"],
            "host": c["Config"]["Labels"]["io.inferops.disagg.host"],
        }
        for c in info
    }


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    )
    return proc.stdout


def _generate(text: str) -> str:
    r = requests.post(
        f"{ROUTER}/generate",
        timeout=30,
        json={"text": text, "sampling_params": {"max_new_tokens": 8}},
    )
    assert r.status_code == 200, r.text
    return r.json()["text"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh 2P1D rehearsal cluster named pdt; removed (and checked removed) afterwards."""
    inventory = tmp_path_factory.mktemp("pdt") / "rehearsal"
    cluster_py = REPO / "scripts" / "cluster.py"
    _ok(
        _run(
            sys.executable,
            cluster_py,
            "clone",
            "--dest",
            inventory,
            "--name",
            CLUSTER,
            "--subnet",
            SUBNET,
        )
    )
    _run(sys.executable, cluster_py, "down", "-i", inventory)  # leftovers of an aborted run
    before = {kind: _docker_names(kind) for kind in ("container", "network", "volume")}
    try:
        _ok(_run(sys.executable, cluster_py, "up", "-i", inventory, timeout=1200))
        images = dict(
            line.split("=", 1) for line in _images_env().read_text().split()
        )
        pinned = inventory / "group_vars" / "all" / "zz_test.yml"
        pinned.write_text(yaml.safe_dump({"disagg_image": images["REHEARSAL_IMAGE"]}))
        yield inventory
    finally:
        _playbook(inventory, "teardown.yml")
        down = _run(sys.executable, cluster_py, "down", "-i", inventory)
    after = {kind: _docker_names(kind) for kind in ("container", "network", "volume")}
    assert down.returncode == 0, down.stderr
    for kind in after:
        left = {n for n in after[kind] - before[kind] if n.startswith(f"{CLUSTER}-")}
        assert not left, f"{kind}s of the pdt cluster left behind: {sorted(left)}"


def test_site_deploys_serves_and_benchmarks_into_one_run_record(
        cluster: Path, tmp_path: Path) -> None:
    """The cluster's first run is site.yml = validate, preflight, image, deploy, benchmark: one
    run, one run directory; the deploy serves a request through the router (prefill -> KV bytes
    via Mooncake -> decode), preflight's missing GPU is a warning in warn mode, the router lists
    2 prefill + 1 decode healthy, and the benchmark ran its clients on proxy-1 with 0 failed."""
    runs = tmp_path / "runs"
    # the clients run in a container of the deployed image on proxy-1 (benchmark_client_host)
    small = {"disagg_runs_dir": str(runs), "benchmark_concurrency": [2],
             "benchmark_presets": [{"name": "tiny", "isl": 32, "osl": 8}],
             "benchmark_gsm8k_num_questions": 4, "benchmark_warmup_run": False,
             "benchmark_client_host": "proxy-1"}
    out = _ok(_playbook(cluster, "site.yml", "-e", json.dumps(small))[0])

    # the deploy
    answer = re.search(r"'answer: (.+?)'", out, re.S)
    assert answer and answer.group(1).strip(), out[-3000:]
    assert re.search(r"path: client -> router proxy-1:30000 -> prefill prefill-\d", out), out[
        -3000:
    ]
    assert re.search(r"-> \d+ KV bytes via\s+Mooncake -> decode decode-1", out), out[-3000:]
    components = sorted(c["component"] for c in _containers().values() if c["running"])
    assert components == ["decode", "prefill", "prefill", "router"]
    # preflight (warn) found no GPU on the rehearsal hosts; the profile's tp 1 needs one
    assert re.search(r"WARNING\s+\(preflight\s+warn,\s+carrying\s+on\):\s+decode-1:\s+decode\s+of"
                     r"\s+profile\s+rehearsal-tiny\s+needs\s+1\s+GPUs", out), out[-3000:]
    assert _generate("curl through the router")
    workers = requests.get(f"{ROUTER}/workers", timeout=5).json()["workers"]
    assert sorted((w["worker_type"], w["is_healthy"]) for w in workers) == [
        ("decode", True),
        ("prefill", True),
        ("prefill", True),
    ]
    counters = requests.get("http://172.29.214.21:30002/get_server_info", timeout=5).json()
    assert counters["counters"]["kv_bytes_received"] > 0

    # one run record for every stage
    (run,) = list(runs.iterdir())
    names = {p.name for p in run.iterdir()}
    assert {"preflight", "bench", "proxy-1", "prefill-1", "prefill-2", "decode-1"} <= names, names
    bench = run / "bench"
    for rel in ("serving/tiny/iter1_con2.log", "gsm8k/gsm8k.json", "results/bench.json"):
        assert (bench / rel).is_file() and (bench / rel).stat().st_size > 0, rel
    doc = json.loads((bench / "results" / "bench.json").read_text())
    assert doc["summary"]["failed_requests"] == 0 and doc["gsm8k"][0]["failed_requests"] == 0
    client = doc["meta"]["client"]
    assert client.startswith("proxy-1 (in image inferops-rehearsal:"), client
    assert f"Clients ran on: **{client}**" in (bench / "results" / "bench.md").read_text()
    assert json.loads((bench / "meta.json").read_text())["client_network_mode"] == \
        f"container:{CLUSTER}-proxy-1"
    command = (bench / "serving" / "tiny" / "iter1_con2.log").read_text().splitlines()[1]
    assert "-m pdbench.bench_serving" in command and sys.executable not in command, command
    left = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"name={CLUSTER}-bench-client"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert not left, "the client container was not removed"
    # the image stage ran in this run (its logs go to image/ only when it builds)
    assert re.search(r"inferops-rehearsal:\w+ \(sha256:\w+\), profile rehearsal:", out), out[-3000:]
    assert (run / "bench" / "results" / "report.md").is_file()
    assert list((run / "preflight").glob("*.json")), "no preflight report"
    # deploy.yml's own preflight is skipped: this run did it before building the image
    assert "Note that this run has done its preflight" in out


def _installed_collection(tmp: Path) -> dict[str, str]:
    """Build the collection tarball, install it into ``tmp``; the environment that sees only it
    (no checkout: no ansible.cfg of ours, no .cache/collections on any path)."""
    built = _run(BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp / "dist",
                 REPO)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = next((tmp / "dist").glob("inferops-disagg-*.tar.gz"))
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(tmp)),
        "ANSIBLE_COLLECTIONS_PATH": str(tmp / "collections"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
    }
    installed = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p",
         str(tmp / "collections"), str(tarball)],
        cwd=tmp, env=env, capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return env


def test_installed_tarball_deploys_the_same(cluster: Path, tmp_path: Path) -> None:
    """The collection as users install it (ansible-galaxy collection install of the built
    tarball), run by FQCN from an unrelated directory: a second deploy finds the running cluster
    exactly as the checkout's first left it (changed=0 on every host, no container restarted),
    and its run record lands in ./runs there."""
    env = _installed_collection(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()

    def play(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(cluster),
                               *map(str, argv)], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600, check=False)

    listed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list",
                             "inferops.disagg", "--format", "json"], cwd=work, env=env,
                            capture_output=True, text=True, check=True)
    paths = list(json.loads(listed.stdout))
    assert paths == [str(tmp_path / "collections" / "ansible_collections")], paths
    installed = tmp_path / "collections" / "ansible_collections" / "inferops" / "disagg"
    assert not (installed / ".cache").exists() and not (installed / ".venv").exists()

    before = _containers()
    out = _ok(play("inferops.disagg.deploy"))
    recap = _recap(out)
    assert set(recap) >= {"proxy-1", "prefill-1", "prefill-2", "decode-1"}
    assert all(r["changed"] == 0 for r in recap.values()), (recap, _changed(out))
    assert _containers() == before, "a container was restarted"
    runs = list((work / "runs").iterdir())
    assert len(runs) == 1, runs
    assert (runs[0] / "preflight").is_dir() and (runs[0] / "decode-1").is_dir(), \
        sorted(p.name for p in runs[0].iterdir())
    assert not (installed / "runs").exists()
    _ok(play("inferops.disagg.preflight", "--check"))
    _ok(play("inferops.disagg.build_image", "--check"))

    # pdctl from a non-editable `pip install` runs the installed collection's playbooks (its
    # cheapest one, collect_logs: which playbook pdctl finds is the point, not what it does).
    site = tmp_path / "site"
    pip = subprocess.run([str(BIN / "pip"), "install", "-q", "--no-deps", "--target", str(site),
                          str(REPO)], capture_output=True, text=True, timeout=600, check=False)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    pd = subprocess.run([str(BIN / "python"), "-m", "pdctl", "logs", "-i", str(cluster),
                         "--json"], cwd=work, env={**env, "PYTHONPATH": str(site)},
                        capture_output=True, text=True, timeout=600, check=False)
    summary = json.loads(pd.stdout)
    assert pd.returncode == 0 and summary["ok"], pd.stdout[-3000:] + pd.stderr[-3000:]
    assert str(installed / "playbooks" / "collect_logs.yml") in pd.stderr, pd.stderr[-2000:]
    assert list((work / summary["run_dir"]).glob("decode-1/*.log")), summary["run_dir"]


def test_plan_shows_what_would_change_and_touches_nothing(cluster: Path, tmp_path: Path) -> None:
    """pdctl plan (deploy.yml --check --diff) on the running cluster with a decode-only change:
    decode would be recreated because of its env, the rest is unchanged, every container's exact
    spec is there with the secret redacted, plan.md/plan.json are in the run dir, and nothing on
    any host changed."""
    before = _containers()
    (cluster / "group_vars" / "decode.yml").write_text(
        yaml.safe_dump({"sglang_worker_env": {"PDT_DECODE_ONLY": "1",
                                              "HF_TOKEN": "hf_plan_test_secret"}})
    )
    proc = _run(BIN / "pdctl", "plan", "-i", cluster, "--json", "--run-dir", tmp_path / "plan")
    assert proc.returncode == 0, proc.stderr[-4000:]
    plan = json.loads(proc.stdout)
    assert plan["check_mode"] and plan["complete"] and plan["run"]["ok"], plan["failures"]
    actions = {(h, c["name"]): (c["action"], c["reason"])
               for h, d in plan["hosts"].items() for c in d["containers"]}
    same = ("unchanged", "runs with the same settings (running)")
    assert actions == {
        ("proxy-1", f"{CLUSTER}-router-proxy-1"): same,
        ("prefill-1", f"{CLUSTER}-prefill-prefill-1"): same,
        ("prefill-2", f"{CLUSTER}-prefill-prefill-2"): same,
        ("decode-1", f"{CLUSTER}-decode-decode-1"): ("recreate", "changed: env"),
    }, actions
    decode = plan["hosts"]["decode-1"]["containers"][0]
    assert decode["env"]["PDT_DECODE_ONLY"] == "1" and decode["env"]["HF_TOKEN"] == "***"
    assert decode["env"]["NCCL_SOCKET_IFNAME"] == "eth0"
    argv = decode["argv"]
    assert argv[argv.index("--disaggregation-mode") + 1] == "decode"
    assert argv[argv.index("--host") + 1] == "172.29.214.21"
    assert decode["network_mode"] == f"container:{CLUSTER}-decode-1"
    assert any(v.endswith(":ro") for v in decode["volumes"])
    assert [s["step"] for s in plan["start_order"]] == [2, 3]
    assert plan["hosts"]["decode-1"]["launch_settings"]["socket_ifname"] == "eth0"
    markdown = (tmp_path / "plan" / "plan.md").read_text()
    assert f"| decode-1 | 2 | {CLUSTER}-decode-decode-1 | recreate | changed: env |" in markdown
    for name in ("plan.md", "plan.json"):
        assert "hf_plan_test_secret" not in (tmp_path / "plan" / name).read_text()
    assert "hf_plan_test_secret" not in proc.stdout
    assert _containers() == before, "the plan changed a container"


def test_decode_change_restarts_only_decode_and_a_killed_prefill_comes_back(
        cluster: Path) -> None:
    """Under the live router a plain deploy refuses to replace decode in place (nothing changes,
    the fix is named); with disagg_rollout_allow_outage it replaces only decode and registers it
    anew with the router (a fresh circuit breaker: the smoke test passes at once). The same
    deploy starts a prefill killed meanwhile again and names it; nothing else restarts."""
    before = _containers()
    (cluster / "group_vars" / "decode.yml").write_text(
        yaml.safe_dump({"sglang_worker_env": {"PDT_DECODE_ONLY": "1"}})
    )
    refused, _ = _playbook(cluster, "deploy.yml", "--skip-tags", "preflight")  # the refusal only
    assert refused.returncode != 0
    assert ("decode-1: the service is live (the router at http://172.29.214.10:30000 answers) "
            "and this deploy would replace pdt-decode-decode-1 in place (changed: env)"
            in " ".join(refused.stdout.split())), refused.stdout[-3000:]
    assert "rolling_update.yml" in refused.stdout
    assert "disagg_rollout_allow_outage" in refused.stdout
    assert _containers() == before
    killed = f"{CLUSTER}-prefill-prefill-2"
    subprocess.run(["docker", "kill", killed], check=True, capture_output=True)
    out = _ok(_playbook(cluster, "deploy.yml", "-e", "disagg_rollout_allow_outage=true",
                        "--skip-tags", "preflight")[0])
    recap = _recap(out)
    assert recap["decode-1"]["changed"] == 2, (recap, _changed(out))  # replaced + registered anew
    assert recap["prefill-2"]["changed"] >= 1, (recap, _changed(out))
    assert all(r["changed"] == 0 for h, r in recap.items() if h not in ("decode-1", "prefill-2")), \
        (recap, _changed(out))
    after = _containers()
    restarted = sorted(n for n in after if after[n]["started"] != before[n]["started"])
    assert restarted == [f"{CLUSTER}-decode-decode-1", killed], restarted
    assert "decode-1: pdt-decode-decode-1: recreated (changed: env)" in out
    assert f"prefill-2: {killed}: started again (it was exited, exit code 137)" in out, out[-3000:]
    assert after[killed]["running"]
    assert _generate("after the prefill came back")


def test_rolling_update_under_load_drops_nothing(cluster: Path) -> None:
    """rolling_update.yml with a changed worker env (disagg_container_env_extra) under steady
    load: both prefill workers replaced one at a time, and the only decode surge-first (a
    stand-in on shifted ports joins the router, the old decode drains and is replaced, the
    stand-in leaves), with 0 failed requests and the router never restarted; a second run with
    the same change touches nothing on decode; with surge off the only decode is refused,
    unchanged."""
    change = json.dumps({"disagg_container_env_extra": {"PDT_ROLL": "1"}})
    before = _containers()
    with Load(ROUTER) as load:
        time.sleep(2)
        out = _ok(_playbook(cluster, "rolling_update.yml", "-e", change)[0])
        time.sleep(2)
    assert load.sent > 50 and load.failed == [], (load.sent, load.failed[:10])
    stand_in = f"{CLUSTER}-decode-decode-1-surge"
    assert "Put the stand-in into the router - http://172.29.214.21:30102" in out, out[-3000:]
    assert f"Remove the stand-in - {stand_in}" in out, out[-3000:]
    after = _containers()
    assert stand_in not in after and f"{stand_in}-failed" not in after, sorted(after)
    restarted = sorted(n for n in after if after[n]["started"] != before[n]["started"])
    assert restarted == [f"{CLUSTER}-decode-decode-1", f"{CLUSTER}-prefill-prefill-1",
                         f"{CLUSTER}-prefill-prefill-2"], restarted
    assert after[f"{CLUSTER}-router-proxy-1"] == before[f"{CLUSTER}-router-proxy-1"]
    workers = requests.get(f"{ROUTER}/workers", timeout=10).json()["workers"]
    assert sorted((w["url"], w["worker_type"], w["is_healthy"]) for w in workers) == [
        ("http://172.29.214.11:30001", "prefill", True),
        ("http://172.29.214.12:30001", "prefill", True),
        ("http://172.29.214.21:30002", "decode", True)], workers

    # The surge path (the stand-in gone, nothing left to redo) is the one a rerun could trip on.
    again = _ok(_playbook(cluster, "rolling_update.yml", "-e", change,
                          "--limit", "localhost:proxy:decode")[0])
    assert all(r["changed"] == 0 for r in _recap(again).values()), (_recap(again), _changed(again))
    assert _containers() == after

    refused, _ = _playbook(cluster, "rolling_update.yml", "-e", "disagg_rollout_surge=false",
                           "-e", json.dumps({"disagg_container_env_extra": {"PDT_ROLL": "2"}}),
                           "--limit", "localhost:proxy:decode")
    assert refused.returncode != 0
    assert (f"{CLUSTER}-decode-decode-1 is the only decode instance (1 in the inventory)"
            in " ".join(refused.stdout.split())), refused.stdout[-3000:]
    assert _containers() == after


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param({"decode": {}}, ["group 'decode' is empty", "Fix:"], id="empty-decode"),
        pytest.param(
            {"decode": {"prefill-2": None, "decode-1": None}},
            ["prefill-2 is in both group 'prefill' and group 'decode'", "Fix:"],
            id="host-in-prefill-and-decode",
        ),
    ],
)
def test_bad_inventory_fails_before_anything_starts(
    cluster: Path, tmp_path: Path, edit: dict, expected: list[str]
) -> None:
    bad = tmp_path / "rehearsal"
    shutil.copytree(cluster, bad)
    hosts = yaml.safe_load((bad / "hosts.yml").read_text())
    groups = hosts["all"]["children"]["rehearsal_hosts"]["children"]
    for group, members in edit.items():
        groups[group]["hosts"] = members
    (bad / "hosts.yml").write_text(yaml.safe_dump(hosts))
    before = _containers()
    proc, seconds = _playbook(bad, "deploy.yml")
    assert proc.returncode != 0
    for text in expected:
        assert text in proc.stdout, proc.stdout[-3000:]
    assert "Run the container" not in proc.stdout and seconds < 60
    assert _containers() == before


def test_never_healthy_worker_fails_within_its_timeout(cluster: Path) -> None:
    router = f"{CLUSTER}-router-proxy-1"
    router_started = _containers()[router]["started"]
    host_vars = cluster / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / "prefill-1.yml").write_text(
        yaml.safe_dump(
            {
                "sglang_worker_extra_args": [
                    "--rehearsal-kv-pool-mb",
                    "64",
                    "--rehearsal-never-ready",
                ],
                "sglang_worker_health_timeout": NEVER_READY_TIMEOUT,
            }
        )
    )
    try:
        proc, seconds = _playbook(cluster, "deploy.yml", "-e", "disagg_rollout_allow_outage=true",
                                  "--skip-tags", "preflight")
    finally:
        (host_vars / "prefill-1.yml").unlink()
    out = proc.stdout
    assert proc.returncode != 0
    message = re.search(
        r"prefill-1: prefill worker container pdt-prefill-prefill-1 \(port 30001\) "
        r"is not healthy: .*/health did not answer 200 within "
        rf"{NEVER_READY_TIMEOUT}s",
        out,
    )
    assert message, out[-4000:]
    assert re.search(r"Last \d+ log lines of pdt-prefill-prefill-1 on prefill-1:", out)
    assert "--rehearsal-never-ready: /health will stay 503" in out
    assert "deploy failed on prefill-1" in out
    assert "included: inferops.disagg.router for proxy-1" not in out
    assert _containers()[router]["started"] == router_started
    # Nothing hangs: the wait is bounded; the rest is the deploy's own steps on a busy 2-core box.
    assert seconds < NEVER_READY_TIMEOUT + 150, seconds
    run_dirs = re.search(r"Logs of every container: (\S+)/", out)
    assert (
        run_dirs and (Path(run_dirs.group(1)) / "prefill-1" / "pdt-prefill-prefill-1.log").is_file()
    )


def test_etcd_metadata_mode(cluster: Path) -> None:
    out = _ok(_playbook(cluster, "deploy.yml", "-e", "disagg_mooncake_metadata=etcd",
                        "-e", "disagg_rollout_allow_outage=true", "--skip-tags", "preflight")[0])
    assert "proxy-1: pdt-etcd-proxy-1: created" in out
    assert re.search(r"'answer: \w", out), out[-3000:]
    logs = subprocess.run(
        ["docker", "logs", f"{CLUSTER}-decode-decode-1"], capture_output=True, text=True, check=True
    )
    assert "metadata etcd://172.29.214.10:2379" in logs.stdout + logs.stderr
    assert _generate("metadata in etcd")


def test_teardown_removes_everything_and_is_idempotent(cluster: Path) -> None:
    out = _ok(_playbook(cluster, "teardown.yml")[0])
    assert sum(r["changed"] for r in _recap(out).values()) == 4
    assert _containers() == {}
    again = _ok(_playbook(cluster, "teardown.yml")[0])
    assert all(r["changed"] == 0 for r in _recap(again).values())
