"""Shared fixtures: free ports, rehearsal model directories, managed background processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from ansible.plugins.loader import init_plugin_loader

from pd_rehearsal.model import write_model_dir

REPO = Path(__file__).resolve().parent.parent

# One collection loader for the whole session, installed before any test module imports
# `ansible_collections.inferops.disagg.*`: mixing plain namespace imports with Ansible's
# finder (installed later by a plugin test) breaks whichever came second.
init_plugin_loader([str(REPO / ".cache" / "collections")])


def write_loopback_inventory(tmp: Path, settings: dict) -> Path:
    """``tmp/inventory``: one proxy, prefill and decode host, all 127.0.0.1 (never contacted by
    the controller-side plays that use it), with ``settings`` in ``group_vars/all/bench.yml``."""
    inv = tmp / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    hosts = {"all": {"children": {
        group: {"hosts": {f"{group}-1": {"ansible_host": "127.0.0.1"}}}
        for group in ("proxy", "prefill", "decode")}}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inv / "group_vars" / "all" / "bench.yml").write_text(yaml.safe_dump(settings))
    return inv


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rehearsal model directory (config + offline tokenizer)."""
    return write_model_dir(tmp_path_factory.mktemp("models") / "rehearsal-tiny", "rehearsal-tiny")


class Proc:
    """A background process whose output goes to a log file, killed at teardown."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def wait_http(url: str, proc: Proc, timeout: float = 60.0, want: int = 200) -> None:
    """Poll ``url`` until it answers ``want``; fail with the process log otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}")
        try:
            last = requests.get(url, timeout=2).status_code
            if last == want:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(f"{url} not {want} after {timeout}s (last: {last}); {proc.name} log:\n"
                f"{proc.log()[-3000:]}")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[callable]:
    """Start background processes: ``start(name, argv, **env)``; all stopped at teardown."""
    started: list[Proc] = []
    env = dict(os.environ, SGLANG_DISAGGREGATION_WAITING_TIMEOUT="30",
               SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT="30", PYTHONUNBUFFERED="1")

    def start(name: str, argv: list[str], **extra: str) -> Proc:
        p = Proc(name, argv, tmp_path, {**env, **extra})
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def engine_argv(model: Path, port: int, *extra: str) -> list[str]:
    """Command line of a rehearsal engine on 127.0.0.1 (SGLang flags + quick startup)."""
    return [sys.executable, "-m", "pd_rehearsal", "--model-path", str(model), "--host",
            "127.0.0.1", "--port", str(port), "--rehearsal-startup-seconds", "0.2",
            "--rehearsal-kv-pool-mb", "64", *extra]


# The test files that take longest (minutes each: they deploy rehearsal clusters), longest
# first. scripts/test.sh runs pytest-xdist with --dist loadfile --no-loadscope-reorder, so files
# are handed to the workers in collection order: the long ones start first and the short ones
# fill in around them, instead of a long file starting last while the other worker idles.
# Rough order from CI's --durations; a file not listed keeps its place after these.
LONGEST_FIRST = (
    "tests/integration/test_deploy.py",
    "tests/integration/test_day2.py",
    "tests/integration/test_molecule.py",
    "tests/integration/test_rehearsal_mi300x.py",
    "tests/integration/test_pdctl_cluster.py",
    "tests/integration/test_secrets.py",
    "tests/integration/test_bench_playbook.py",
    "tests/integration/test_pdctl_slurm.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the files of LONGEST_FIRST first, in that order (a stable sort: the rest, and the
    tests inside each file, keep their order)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
