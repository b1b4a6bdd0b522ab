"""Helpers of the integration tests that run playbooks on a rehearsal cluster of their own
(``scripts/cluster.py clone`` of inventories/rehearsal, its own name and subnet)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER_PY = REPO / "scripts" / "cluster.py"


def run(*argv: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository with this interpreter's tools on PATH."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run([str(a) for a in argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def playbook(inventory: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook -i inventory playbooks/<name> extra...``."""
    return run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / name, *extra)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have succeeded (else its tail, in the failure)."""
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP of the last play: host -> {ok, changed, failed, ...}."""
    block = output.rsplit("PLAY RECAP", 1)[-1]
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", block, re.M)}


def clone(inventory: Path, name: str, subnet: str, xp: int, yd: int) -> Path:
    """A clone of inventories/rehearsal at ``inventory``: cluster ``name`` on ``subnet`` with
    ``xp`` prefill and ``yd`` decode hosts (``scripts/cluster.py clone --xp --yd``)."""
    ok(run(sys.executable, CLUSTER_PY, "clone", "--dest", inventory, "--name", name,
           "--subnet", subnet, "--xp", str(xp), "--yd", str(yd)))
    return inventory


def subset(inventory: Path, dest: Path, drop: list[str]) -> Path:
    """A copy of ``inventory`` without the hosts ``drop`` (the same cluster, fewer hosts)."""
    import shutil

    shutil.copytree(inventory, dest)
    data = yaml.safe_load((dest / "hosts.yml").read_text())
    for group in data["all"]["children"]["rehearsal_hosts"]["children"].values():
        for host in drop:
            group["hosts"].pop(host, None)
    (dest / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def containers(label: str) -> dict[str, dict]:
    """The deploy containers carrying ``label``: name -> {id, started, running, component}."""
    names = subprocess.run(["docker", "ps", "-a", "--filter", f"label={label}", "--filter",
                            "label=io.inferops.disagg.component", "--format", "{{.Names}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    if not names:
        return {}
    info = json.loads(subprocess.run(["docker", "inspect", *names], capture_output=True,
                                     text=True, check=True).stdout)
    component = "io.inferops.disagg.component"
    return {c["Name"].lstrip("/"): {"id": c["Id"], "started": c["State"]["StartedAt"],
                                    "running": c["State"]["Running"],
                                    "component": c["Config"]["Labels"][component]}
            for c in info}


def workers(router: str) -> list[tuple[str, str, bool]]:
    """What the router lists: sorted (worker_type, url, is_healthy)."""
    listing = requests.get(f"{router}/workers", timeout=10).json()["workers"]
    return sorted((w["worker_type"], w["url"], w["is_healthy"]) for w in listing)


class Load:
    """Steady /generate traffic through ``router`` from ``clients`` threads until the block
    ends: how many requests were sent, and the status (or exception) of each that failed."""

    def __init__(self, router: str, clients: int = 8) -> None:
        self.router = router
        self.sent = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(clients)]

    def _client(self, i: int) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    r = session.post(f"{self.router}/generate", timeout=60, json={
                        "text": f"day2 {i} {self.sent}", "sampling_params": {"max_new_tokens": 8}})
                    bad = "" if r.status_code == 200 else f"{r.status_code} {r.text[:120]}"
                except requests.RequestException as exc:
                    bad = type(exc).__name__
                with self._lock:
                    self.sent += 1
                    if bad:
                        self.failed.append(bad)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(90)
