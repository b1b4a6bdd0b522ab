#!/usr/bin/env python
"""Measure how long playbooks/deploy.yml takes against the floor it cannot beat.

The measurement runs on a rehearsal cluster of its own (``scripts/cluster.py clone``, named
``pdb``), so it neither disturbs nor depends on the demo cluster.

* **cold deploy**: ``ansible-playbook playbooks/deploy.yml`` with none of the deploy's
  containers present. This is everything up to the smoke test's answer: inventory validation,
  workers started and health-gated, router ready with exactly 2 prefill + 1 decode healthy, one
  ``/generate``, logs collected.
* **warm re-deploy**: the same command again on the deployed cluster. It must report
  changed=0.
* **floor**: the same three worker containers (same image, command, environment, mounts,
  network namespace, taken from ``docker inspect`` of the deployed ones) started directly with
  ``docker run``, all at once. It is then timed from the start to the slowest one's
  ``/health`` 200, polled every 50 ms from this machine, with no orchestration around it.

Each is repeated (``--repeat``). The report, ``bench/reports/deploy_time.md``, gives every run,
the medians and the ratios deploy/floor, and also the slowest deploy tasks of the last cold run
(``ansible.posix.profile_tasks``) together with the machine's load, so that the numbers can be
read in context.

Usage::

    .venv/bin/python bench/deploy_time.py [--repeat 3] [--report bench/reports/deploy_time.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLUSTER_PY = REPO / "scripts" / "cluster.py"
NAME = "pdb"
SUBNET = "172.29.219.0/24"
LABEL = f"io.inferops.disagg.rehearsal={NAME}"
DEFAULT_REPORT = REPO / "bench" / "reports" / "deploy_time.md"


def _images_env() -> Path:
    """Where scripts/rehearsal_image.py keeps the image refs (its work directory)."""
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "rehearsal_image.py"),
                          "--env-file"], capture_output=True, text=True, check=True).stdout
    return Path(out.strip())


def log(message: str) -> None:
    """One progress line on stderr."""
    print(f"deploy_time: {message}", file=sys.stderr, flush=True)


def run(*argv: str | Path, check: bool = True, env: dict | None = None) -> str:
    """Run a command in the repository; return stdout, raise with its output on failure."""
    full_env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    proc = subprocess.run(
        [str(a) for a in argv], cwd=REPO, env=full_env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        )
    return proc.stdout


def playbook(inventory: Path, name: str, profile: bool = False) -> tuple[float, str]:
    """Run a playbook; return (seconds, output)."""
    env = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"} if profile else None
    started = time.monotonic()
    out = run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / name, env=env)
    return time.monotonic() - started, out


def changed_total(output: str) -> int:
    """Sum of changed= over the last PLAY RECAP."""
    return sum(int(n) for n in re.findall(r"^\S+\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M))


def slowest_tasks(output: str, count: int = 8) -> list[tuple[str, float]]:
    """The profile_tasks recap: (task, seconds), slowest first."""
    rows = re.findall(r"^(.+?) -+ (\d+\.\d+)s$", output, re.M)
    return [(task.strip(), float(sec)) for task, sec in rows][:count]


def workers(label: str = LABEL) -> list[dict]:
    """docker inspect of the cluster's worker (prefill and decode) containers."""
    ids = run("docker", "ps", "-q", "--filter", f"label={label}").split()
    return [
        c
        for c in json.loads(run("docker", "inspect", *ids))
        if c["Config"]["Labels"].get("io.inferops.disagg.component") in ("prefill", "decode")
    ]


def health_url(container: dict) -> str:
    """The worker's /health URL at its host's address (from its own command line)."""
    cmd = container["Config"]["Cmd"]
    port = cmd[cmd.index("--port") + 1]
    network = container["HostConfig"]["NetworkMode"]  # container:<host container id>
    host = json.loads(run("docker", "inspect", network.split(":", 1)[1]))[0]
    address = next(iter(host["NetworkSettings"]["Networks"].values()))["IPAddress"]
    return f"http://{address}:{port}/health"


def floor_specs(label: str = LABEL) -> list[dict]:
    """What floor_once starts: each running worker's image, command, env, mounts, network."""
    return [
        {
            "image": c["Config"]["Image"],
            "cmd": c["Config"]["Cmd"],
            "env": c["Config"]["Env"],
            "binds": c["HostConfig"]["Binds"] or [],
            "network": c["HostConfig"]["NetworkMode"],
            "url": health_url(c),
        }
        for c in workers(label)
    ]


def floor_once(specs: list[dict], name: str = NAME, label: str = LABEL) -> float:
    """Start the workers directly, all at once; seconds until the slowest answers /health 200."""
    names = [f"{name}-floor-{i}" for i in range(len(specs))]
    started = time.monotonic()
    for name, spec in zip(names, specs, strict=True):
        args = [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--label",
            label,
            "--network",
            spec["network"],
        ]
        for item in spec["env"]:
            args += ["-e", item]
        for bind in spec["binds"]:
            args += ["-v", bind]
        run(*args, spec["image"], *spec["cmd"])
    pending = dict(zip(names, (s["url"] for s in specs), strict=True))
    done: dict[str, float] = {}
    try:
        while pending:
            for name, url in list(pending.items()):
                try:
                    if requests.get(url, timeout=1).status_code == 200:
                        done[name] = time.monotonic() - started
                        del pending[name]
                except requests.RequestException:
                    pass
            if time.monotonic() - started > 300:
                raise RuntimeError(f"floor: {sorted(pending)} not healthy after 300 s")
            time.sleep(0.05)
    finally:
        run("docker", "rm", "-f", *names, check=False)
    return max(done.values())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    parser.add_argument("--keep", action="store_true", help="leave the pdb cluster running")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="deploy-time-"))
    inventory = workdir / "rehearsal"
    run(
        sys.executable, CLUSTER_PY, "clone", "--dest", inventory, "--name", NAME, "--subnet", SUBNET
    )
    log("cluster up (builds images if missing)")
    run(sys.executable, CLUSTER_PY, "up", "-i", inventory)
    images = dict(
        line.split("=", 1) for line in _images_env().read_text().split()
    )
    (inventory / "group_vars" / "all" / "zz_bench.yml").write_text(
        yaml.safe_dump({"disagg_image": images["REHEARSAL_IMAGE"]})
    )
    cold: list[float] = []
    warm: list[float] = []
    floor: list[float] = []
    load_before = os.getloadavg()
    profile = ""
    try:
        playbook(inventory, "teardown.yml")
        for i in range(args.repeat):
            seconds, out = playbook(inventory, "deploy.yml", profile=True)
            cold.append(seconds)
            profile = out
            log(f"cold deploy {i + 1}: {seconds:.1f} s")
            seconds, out = playbook(inventory, "deploy.yml")
            if changed_total(out) != 0:
                raise RuntimeError(f"warm re-deploy changed something:\n{out[-3000:]}")
            warm.append(seconds)
            log(f"warm re-deploy {i + 1}: {seconds:.1f} s (changed=0)")
            specs = floor_specs()
            playbook(inventory, "teardown.yml")
            seconds = floor_once(specs)
            floor.append(seconds)
            log(f"floor {i + 1}: {seconds:.2f} s (slowest of {len(specs)} workers)")
    finally:
        playbook(inventory, "teardown.yml")
        if not args.keep:
            run(sys.executable, CLUSTER_PY, "down", "-i", inventory, check=False)
    load_after = os.getloadavg()
    write_report(
        args.report,
        cold,
        warm,
        floor,
        slowest_tasks(profile),
        load_before,
        load_after,
        images["REHEARSAL_IMAGE"],
    )
    log(f"report: {args.report}")
    return 0


def write_report(
    path: Path,
    cold: list[float],
    warm: list[float],
    floor: list[float],
    tasks: list[tuple[str, float]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    image: str,
) -> None:
    """Write the Markdown report."""
    mc, mw, mf = (statistics.median(v) for v in (cold, warm, floor))
    runs = "\n".join(
        f"| {i + 1} | {c:.1f} | {w:.1f} | {f:.2f} |"
        for i, (c, w, f) in enumerate(zip(cold, warm, floor, strict=True))
    )
    slow = "\n".join(f"| {task} | {sec:.1f} |" for task, sec in tasks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# Deploy time: deploy.yml against its floor

Measured by `bench/deploy_time.py` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} on a 2P1D
rehearsal cluster: 4 SSH-reached host containers, image `{image}`, model `rehearsal-tiny` (the
engine's default 2 s simulated model load). Machine: {os.cpu_count()} CPUs, Python
{platform.python_version()}, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after
(other jobs share this machine).

- **cold deploy**: `ansible-playbook playbooks/deploy.yml` with none of the deploy's containers:
  inventory validation, 3 workers started in parallel and health-gated, router ready with
  exactly 2 prefill + 1 decode healthy, one `/generate` through the router, logs collected.
- **warm re-deploy**: the same command on the deployed cluster (changed=0, checked every time).
- **floor**: the same 3 worker containers (image, command, env, mounts, network namespace from
  `docker inspect`) started with `docker run`, all at once, until the slowest answers
  `/health` 200 (polled every 50 ms from the controller): what any orchestration must wait for.

| run | cold deploy (s) | warm re-deploy (s) | floor (s) |
|---:|---:|---:|---:|
{runs}
| **median** | **{mc:.1f}** | **{mw:.1f}** | **{mf:.2f}** |

**Ratio cold deploy / floor: {mc / mf:.1f}x. Warm re-deploy / floor: {mw / mf:.1f}x.**

Here the floor is a few seconds because the rehearsal engine's model load is simulated (2 s).
The deploy's own overhead (Ansible over SSH to 4 hosts, the checks, the router gate, the smoke
test, log collection) is cold - floor = {mc - mf:.0f} s. On GPU hosts the floor is the real model
load (minutes), so the ratio there should be much closer to 1; that was not measured here.

Slowest tasks of the last cold deploy (`ansible.posix.profile_tasks`; a task running on several
hosts at once counts once):

| task | s |
|---|---:|
{slow}
""")


if __name__ == "__main__":
    sys.exit(main())
