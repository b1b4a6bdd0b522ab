#!/usr/bin/env python
"""Measure how the collection's cost grows with the host count: 4, 8, 16 and 32 hosts, one run.

One rehearsal cluster of its own (``pds``, 172.29.226.0/24) with 32 SSH-reached host containers
(16P15D + the proxy, ``scripts/cluster.py clone --xp 16 --yd 15``), every one replaying the
recorded 8 x MI300X + 8 x ConnectX-7 tree (``tests/fixtures/preflight/trees/replay-fit``).
Inventories over the first hosts of it give 2P1D (4 hosts), 4P3D (8), 8P7D (16) and 16P15D
(32). For each size, as ``bench/deploy_time.py`` measures them:

* **cold deploy**: ``deploy.yml`` with none of the deploy's containers, up to the smoke test's
  answer; it must end with the router listing exactly xP + yD workers, all healthy;
* **warm re-deploy**: the same again (it must report changed=0);
* **pdctl status** on the deployed service;
* **floor**: the same worker containers started with ``docker run`` all at once, until the
  slowest answers ``/health``; the deploy's own overhead is cold - floor;
* **preflight**: ``preflight.yml`` with ``inventories/rehearsal-mi300x``'s settings (enforce,
  the replayed trees, the KV path probe from every prefill to every decode host over TCP);
* the host containers' and the engines' memory and CPU (``docker stats``), idle, per host.

Then a straight line through the four sizes gives the per-host cost of each, extrapolated to
256 hosts. The report is ``bench/reports/scale.md``; it notes the machine's load, because the 32
"hosts" and the controller share this machine's cores.

Usage::

    .venv/bin/python bench/scale.py [--sizes 4,8,16,32] [--report bench/reports/scale.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import deploy_time  # noqa: E402
from tests.integration.rehearsal import subset  # noqa: E402

BIN = Path(sys.executable).parent
CLUSTER_PY = REPO / "scripts" / "cluster.py"
NAME = "pds"
SUBNET = "172.29.226.0/24"
LABEL = f"io.inferops.disagg.rehearsal={NAME}"
ROUTER = "http://172.29.226.10:30000"
REPLAY_TREE = "tests/fixtures/preflight/trees/replay-fit"
#: hosts -> (prefill hosts, decode hosts); the proxy is the last host.
LAYOUTS = {4: (2, 1), 8: (4, 3), 16: (8, 7), 32: (16, 15)}
EXTRAPOLATE_TO = 256


def log(message: str) -> None:
    """One progress line on stderr."""
    print(f"scale: {message}", file=sys.stderr, flush=True)


def timed(*argv: str | Path, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command in the repository with the repo's ansible.cfg; (seconds, process).
    MAIN_CPU gets the CPU seconds of the command's own process (not its children)."""
    full_env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([str(a) for a in argv], cwd=REPO, env=full_env, stdout=out,
                                 stderr=err, text=True)
        own = 0.0
        while True:  # sample its CPU every 0.2 s; wait() returns the moment it ends
            own = max(own, own_cpu(child.pid))
            try:
                child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(argv, child.returncode, out.read(), err.read())
    MAIN_CPU["last"] = own
    return seconds, proc


#: CPU seconds of the last timed() command's own process: for ansible-playbook, the strategy
#: loop that queues every task on every host and handles every result, one process, serial.
MAIN_CPU: dict[str, float] = {}


def own_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` itself, from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # after the command name: state is fields[0], so utime (14th) and stime (15th) are [11], [12]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: CPU seconds of the last playbook(): the controller (ansible-playbook and its forks) and the
#: host containers (the modules Ansible runs on the hosts, sshd), measured apart.
LAST_CPU: dict[str, float] = {}


def controller_cpu() -> float:
    """CPU seconds of this process's finished children (ansible-playbook and its forks)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hosts_cpu() -> float:
    """CPU seconds the host containers have used (cgroup v1 cpuacct, else v2 cpu.stat)."""
    ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter",
                          f"name=^{NAME}-(proxy|prefill|decode)-[0-9]+$"],
                         capture_output=True, text=True, check=True).stdout.split()
    total = 0.0
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        if v1.is_file():
            total += int(v1.read_text()) / 1e9
        elif v2.is_file():
            stat = dict(line.split() for line in v2.read_text().splitlines())
            total += int(stat["usage_usec"]) / 1e6
    return total


def playbook(inventory: Path, name: str, profile: bool = False) -> tuple[float, str]:
    """Run a playbook that must succeed; (seconds, output). LAST_CPU gets its CPU seconds."""
    env = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"} if profile else None
    ctl, hosts = controller_cpu(), hosts_cpu()
    seconds, proc = timed(BIN / "ansible-playbook", "-i", inventory,
                          REPO / "playbooks" / name, env=env)
    LAST_CPU.update(controller=controller_cpu() - ctl, hosts=hosts_cpu() - hosts,
                    main=MAIN_CPU["last"])
    if proc.returncode != 0:
        raise RuntimeError(f"{name} on {inventory.name} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def make_cluster(work: Path, hosts: int) -> Path:
    """The clone with ``hosts`` hosts, each replaying the recorded MI300X tree."""
    xp, yd = LAYOUTS[hosts]
    inventory = work / f"{hosts}"
    proc = subprocess.run([sys.executable, str(CLUSTER_PY), "clone", "--dest", str(inventory),
                           "--name", NAME, "--subnet", SUBNET, "--xp", str(xp), "--yd", str(yd)],
                          capture_output=True, text=True, check=True)
    del proc
    hosts_file = inventory / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text())
    for group in data["all"]["children"]["rehearsal_hosts"]["children"].values():
        for host_vars in group["hosts"].values():
            host_vars["rehearsal_replay_tree"] = REPLAY_TREE
    hosts_file.write_text(yaml.safe_dump(data, sort_keys=False))
    env_file = subprocess.run([sys.executable, str(REPO / "scripts" / "rehearsal_image.py"),
                               "--env-file"], capture_output=True, text=True, check=True)
    images = dict(line.split("=", 1) for line in Path(env_file.stdout.strip()).read_text().split())
    (inventory / "group_vars" / "all" / "zz_bench.yml").write_text(
        yaml.safe_dump({"disagg_image": images["REHEARSAL_IMAGE"]}))
    return inventory


def size_inventory(big: Path, work: Path, hosts: int) -> Path:
    """An inventory over the first hosts of the big cluster (the same containers)."""
    xp, yd = LAYOUTS[hosts]
    big_xp, big_yd = LAYOUTS[max(LAYOUTS)]
    drop = [f"prefill-{i}" for i in range(xp + 1, big_xp + 1)]
    drop += [f"decode-{i}" for i in range(yd + 1, big_yd + 1)]
    return subset(big, work / f"size-{hosts}", drop) if drop else big


def preflight_inventory(inventory: Path) -> Path:
    """The same hosts with inventories/rehearsal-mi300x's preflight and replay settings."""
    dest = inventory.parent / f"{inventory.name}-preflight"
    shutil.copytree(inventory, dest, symlinks=False)
    for name in ("preflight.yml", "replay.yml"):
        shutil.copy(REPO / "inventories" / "rehearsal-mi300x" / "group_vars" / "all" / name,
                    dest / "group_vars" / "all" / name)
    return dest


def router_counts() -> dict[str, int]:
    """Healthy workers the router lists, by type (the exact health-gated count)."""
    listed = requests.get(f"{ROUTER}/workers", timeout=10).json()["workers"]
    counts: dict[str, int] = {}
    for worker in listed:
        if worker["is_healthy"]:
            counts[worker["worker_type"]] = counts.get(worker["worker_type"], 0) + 1
    return counts


def docker_stats() -> list[dict]:
    """docker stats (one sample) of the cluster's containers: name, kind, MiB, CPU %."""
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter",
                            f"label={LABEL}"], capture_output=True, text=True,
                           check=True).stdout.split()
    hosts = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter",
                            f"name=^{NAME}-(proxy|prefill|decode)-[0-9]+$"],
                           capture_output=True, text=True, check=True).stdout.split()
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}",
                          *sorted(set(names) | set(hosts))],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        stat = json.loads(line)
        name = stat["Name"]
        kind = ("host" if name in hosts else "router" if "-router-" in name
                else "prefill" if "-prefill-prefill-" in name
                else "decode" if "-decode-decode-" in name else "other")
        used = stat["MemUsage"].split("/")[0].strip()
        rows.append({"name": name, "kind": kind, "mib": _mib(used),
                     "cpu": float(stat["CPUPerc"].rstrip("%"))})
    return rows


def _mib(text: str) -> float:
    number, unit = re.match(r"([\d.]+)\s*([KMG]i?B|B)", text).groups()  # type: ignore[union-attr]
    scale = {"B": 1 / 2**20, "KiB": 1 / 1024, "KB": 1 / 1024, "MiB": 1, "MB": 1, "GiB": 1024,
             "GB": 1024}[unit]
    return float(number) * scale


def measure(big: Path, work: Path, hosts: int) -> dict:
    """Every figure for one size."""
    xp, yd = LAYOUTS[hosts]
    inventory = size_inventory(big, work, hosts)
    playbook(big, "teardown.yml")
    row: dict = {"hosts": hosts, "xp": xp, "yd": yd}
    row["cold"], cold_out = playbook(inventory, "deploy.yml", profile=True)
    row["cold_cpu"] = dict(LAST_CPU)
    row["profile"] = deploy_time.slowest_tasks(cold_out, 10)
    row["tasks"] = len(re.findall(r"^TASK \[", cold_out, re.M))
    counts = router_counts()
    if counts != {"prefill": xp, "decode": yd}:
        raise RuntimeError(f"{hosts} hosts: the router lists {counts} healthy, "
                           f"expected {xp} prefill + {yd} decode")
    row["router"] = counts
    log(f"{hosts} hosts: cold deploy {row['cold']:.1f} s ({row['tasks']} tasks), router {counts}")
    row["warm"], warm_out = playbook(inventory, "deploy.yml")
    row["warm_cpu"] = dict(LAST_CPU)
    if deploy_time.changed_total(warm_out) != 0:
        raise RuntimeError(f"warm re-deploy changed something:\n{warm_out[-3000:]}")
    log(f"{hosts} hosts: warm re-deploy {row['warm']:.1f} s (changed=0)")
    row["status"], proc = timed(BIN / "pdctl", "status", "-i", inventory, "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"pdctl status failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                           f"\n{proc.stderr[-2000:]}")
    log(f"{hosts} hosts: pdctl status {row['status']:.1f} s")
    time.sleep(10)  # idle engines
    row["stats"] = docker_stats()
    specs = deploy_time.floor_specs(LABEL)
    playbook(big, "teardown.yml")
    row["floor"] = deploy_time.floor_once(specs, NAME, LABEL)
    log(f"{hosts} hosts: floor {row['floor']:.2f} s (slowest of {len(specs)} workers)")
    row["preflight"], _ = playbook(preflight_inventory(inventory), "preflight.yml")
    row["preflight_cpu"] = dict(LAST_CPU)
    log(f"{hosts} hosts: preflight {row['preflight']:.1f} s")
    return row


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x: (a, b)."""
    slope, intercept = statistics.linear_regression(xs, ys)
    return intercept, slope


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4,8,16,32",
                        help="host counts to measure, among 4, 8, 16, 32")
    parser.add_argument("--report", type=Path, default=REPO / "bench" / "reports" / "scale.md")
    parser.add_argument("--keep", action="store_true", help="leave the pds cluster running")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if not set(sizes) <= set(LAYOUTS):
        parser.error(f"--sizes: each one of {sorted(LAYOUTS)}")
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    big = make_cluster(work, max(LAYOUTS))
    load_before = os.getloadavg()
    started = time.monotonic()
    rows = []
    try:
        timed(sys.executable, CLUSTER_PY, "down", "-i", big)  # leftovers of an aborted run
        up_s, proc = timed(sys.executable, CLUSTER_PY, "up", "-i", big)
        if proc.returncode != 0:
            raise RuntimeError(f"cluster up failed:\n{proc.stderr[-3000:]}")
        log(f"32 host containers up in {up_s:.0f} s")
        time.sleep(10)
        idle_hosts = [s for s in docker_stats() if s["kind"] == "host"]
        for hosts in sizes:
            rows.append(measure(big, work, hosts))
    finally:
        timed(BIN / "ansible-playbook", "-i", big, REPO / "playbooks" / "teardown.yml")
        if not args.keep:
            timed(sys.executable, CLUSTER_PY, "down", "-i", big)
    write_report(args.report, rows, idle_hosts, up_s, load_before, os.getloadavg(),
                 time.monotonic() - started)
    log(f"report: {args.report}")
    return 0


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def write_report(path: Path, rows: list[dict], idle_hosts: list[dict], up_s: float,
                 load_before: tuple[float, float, float], load_after: tuple[float, float, float],
                 wall: float) -> None:
    """bench/reports/scale.md from the measured rows."""
    xs = [float(r["hosts"]) for r in rows]
    series = {
        "cold deploy - floor": [r["cold"] - r["floor"] for r in rows],
        "warm re-deploy": [r["warm"] for r in rows],
        "preflight": [r["preflight"] for r in rows],
        "pdctl status": [r["status"] for r in rows],
    }
    first, last = rows[0], rows[-1]
    out = [
        "# Scale: deploy, preflight and status from 4 to 32 hosts", "",
        f"Measured by `bench/scale.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"all sizes in one run ({wall / 60:.0f} min): {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load_before[0]:.1f} before and "
        f"{load_after[0]:.1f} after. The 32 host containers ({NAME}, reached over SSH), their "
        "engines, the router and the controller all share these cores, so every per-host cost "
        "below includes the CPU that real hosts would bring themselves.", "",
        f"The 32 host containers came up in {up_s:.0f} s (`scripts/cluster.py up`). Each replays "
        "the recorded 8 x MI300X + 8 x ConnectX-7 tree. The engines are rehearsal engines "
        "(`rehearsal-tiny`, 2 s simulated load).", "",
        "## Per size", "",
        "| hosts | xPyD | cold deploy | floor | cold - floor | warm re-deploy (changed=0) "
        "| pdctl status | preflight | deploy tasks | router: healthy workers |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(f"| {r['hosts']} | {r['xp']}P{r['yd']}D | {r['cold']:.1f} s | "
                   f"{r['floor']:.2f} s | {r['cold'] - r['floor']:.1f} s | {r['warm']:.1f} s | "
                   f"{r['status']:.2f} s | {r['preflight']:.1f} s | {r['tasks']} | "
                   f"{r['router'].get('prefill', 0)} prefill + {r['router'].get('decode', 0)} "
                   "decode |")
    out += ["", "## Per-host cost and 256 hosts", "",
            "A least-squares line through the sizes above (seconds = fixed + per host x hosts), "
            f"extrapolated to {EXTRAPOLATE_TO} hosts on this machine, and the ratio of the "
            f"largest size to the smallest ({last['hosts']} / {first['hosts']} hosts):", "",
            "| what | fixed | per host | at 256 hosts | "
            f"{last['hosts']} / {first['hosts']} hosts |", "|---|---:|---:|---:|---:|"]
    for name, ys in series.items():
        if len(xs) >= 2:
            a, b = fit(xs, ys)
            out.append(f"| {name} | {a:.1f} s | {b:.2f} s | {a + b * EXTRAPOLATE_TO:.0f} s | "
                       f"{ys[-1] / ys[0]:.2f}x |")
    out += ["", "## Where the CPU goes: controller and hosts, measured apart", "",
            "CPU seconds of each run: the controller's (`ansible-playbook` and its forks, "
            "`getrusage` of the finished children) and the host containers' (the modules Ansible "
            "runs there and sshd, from their cgroups; not the engines, which run in containers "
            "of their own). On this machine both share the same 2 cores; on real hosts each host "
            "brings its own, so the hosts' part runs in parallel and the controller's part is "
            "what grows with the host count on one machine.", "",
            "| hosts | cold: controller / hosts (per host) | warm: controller / hosts (per host) "
            "| preflight: controller / hosts (per host) |", "|---:|---|---|---|"]
    for r in rows:
        cells = []
        for key in ("cold_cpu", "warm_cpu", "preflight_cpu"):
            cpu = r.get(key) or {}
            cells.append(f"{cpu.get('controller', 0):.0f} s / {cpu.get('hosts', 0):.0f} s "
                         f"({cpu.get('hosts', 0) / r['hosts']:.1f} s)")
        out.append(f"| {r['hosts']} | " + " | ".join(cells) + " |")
    out += ["", "Of the controller's CPU, the part of `ansible-playbook`'s own process (the "
            "strategy loop: it queues every task on every host and handles every result; one "
            "Python process, so it does not spread over the controller's cores; read from "
            "/proc while it runs):", "",
            "| hosts | cold: main process | warm: main process | preflight: main process |",
            "|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['hosts']} | " + " | ".join(
            f"{(r.get(key) or {}).get('main', 0):.1f} s"
            for key in ("cold_cpu", "warm_cpu", "preflight_cpu")) + " |")
    if len(xs) >= 2:
        out += ["", "| controller CPU | fixed | per host | at 256 hosts |", "|---|---:|---:|---:|"]
        for key, label in (("cold_cpu", "cold deploy"), ("warm_cpu", "warm re-deploy"),
                           ("preflight_cpu", "preflight")):
            for part, suffix in (("controller", ""), ("main", ", main process only")):
                ys = [(r.get(key) or {}).get(part, 0.0) for r in rows]
                a, b = fit(xs, ys)
                out.append(f"| {label}{suffix} | {a:.1f} s | {b:.2f} s | "
                           f"{a + b * EXTRAPOLATE_TO:.0f} s |")
    out += ["", "## Resources per host (idle, `docker stats`, one sample)", "",
            "| what | count | memory each (mean) | CPU each (mean) |", "|---|---:|---:|---:|"]
    out.append(f"| host container (sshd), before any deploy | {len(idle_hosts)} | "
               f"{_mean([s['mib'] for s in idle_hosts]):.1f} MiB | "
               f"{_mean([s['cpu'] for s in idle_hosts]):.2f} % |")
    stats = last["stats"]
    for kind in ("host", "prefill", "decode", "router"):
        chosen = [s for s in stats if s["kind"] == kind]
        if chosen:
            out.append(f"| {kind}{' container, deployed' if kind == 'host' else ''} "
                       f"({last['hosts']} hosts) | {len(chosen)} | "
                       f"{_mean([s['mib'] for s in chosen]):.1f} MiB | "
                       f"{_mean([s['cpu'] for s in chosen]):.2f} % |")
    out += ["", f"Total memory of the {last['hosts']}-host deployment: "
            f"{sum(s['mib'] for s in stats) / 1024:.2f} GiB.", ""]
    for r in (first, last):
        out += [f"## Slowest tasks of the cold deploy, {r['hosts']} hosts", "",
                "(`ansible.posix.profile_tasks`; a task running on several hosts at once counts "
                "once)", "", "| task | s |", "|---|---:|"]
        out += [f"| {task} | {sec:.1f} |" for task, sec in r["profile"]]
        out.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = "<!-- bench/scale.py writes the part above; the part below is written by hand -->"
    kept = path.read_text().split(marker, 1)[1] if path.is_file() and marker in path.read_text() \
        else "\n"
    path.write_text("\n".join(out) + "\n" + marker + kept)


if __name__ == "__main__":
    sys.exit(main())
