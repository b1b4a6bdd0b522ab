#!/usr/bin/env python
"""Time ``playbooks/preflight.yml`` over 4 hosts and write ``bench/reports/preflight_time.md``.

The 4 hosts replay the recorded fixture trees (tests/fixtures/preflight/trees): two fit
(8x MI300X + 8x ConnectX-7 with amd-smi) and two unfit (rocm-smi fallback, 8 planted faults), so
every code path of the three fact modules and of the evaluation runs. Two transports:

* ``local``: 4 inventory hosts with ``ansible_connection: local`` (the modules run as separate
  processes, as on 4 machines, but without connection cost). Docker checks query the real daemon
  on ``/var/run/docker.sock``.
* ``docker``: 4 containers of the project's base image (``scripts/base_image.py``) with the
  fixtures and the Docker socket mounted, reached with the ``community.docker.docker_api``
  connection (pipelining on).

Usage::

    .venv/bin/python bench/preflight_time.py                 # both transports, 3 runs each
    .venv/bin/python bench/preflight_time.py --transport local --runs 5 --no-report

Target (issue 5): preflight over 4 hosts in < 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
FIXTURES = REPO / "tests" / "fixtures" / "preflight"
REPORT = REPO / "bench" / "reports" / "preflight_time.md"
TARGET_S = 15.0
HOSTS = [
    ("fit-1", "fit", "prefill"),
    ("fit-2", "fit", "decode"),
    ("unfit-1", "unfit", "prefill"),
    ("unfit-2", "unfit", "decode"),
]
EXPECTED = {
    "fit": [],
    "unfit": [
        "gpu.amd_smi",
        "gpu.count",
        "rdma.port_state",
        "rdma.active_mtu",
        "rdma.roce_v2_gid",
        "host.numa_balancing",
        "host.iommu",
        "host.memlock",
    ],
}
COMMON_VARS = {
    "preflight_mode": "warn",
    "preflight_model_path": "/models/Qwen2.5-0.5B-Instruct",
    "preflight_ports_free": [30000, 8998],
    "preflight_docker_socket": "/var/run/docker.sock",
}


def inventory(transport: str, python: str) -> dict:
    groups: dict[str, dict] = {"prefill": {"hosts": {}}, "decode": {"hosts": {}}}
    for name, tree, group in HOSTS:
        host: dict = {"preflight_root": str(FIXTURES / "trees" / tree)}
        if transport == "docker":
            host.update(
                ansible_connection="community.docker.docker_api",
                ansible_pipelining=True,
                ansible_host=f"pf-bench-{name}",
                preflight_root=f"/srv/preflight/trees/{tree}",
            )
        groups[group]["hosts"][name] = host
    all_vars = dict(COMMON_VARS)
    all_vars["ansible_python_interpreter"] = python
    if transport == "local":
        all_vars["ansible_connection"] = "local"
    return {"all": {"vars": all_vars, "children": groups}}


def base_image() -> str:
    proc = subprocess.run(
        [str(VENV_BIN / "python"), str(REPO / "scripts" / "base_image.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip().splitlines()[-1]


def start_containers(image: str) -> None:
    for name, _tree, _group in HOSTS:
        subprocess.run(["docker", "rm", "-f", f"pf-bench-{name}"], capture_output=True, check=False)
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                f"pf-bench-{name}",
                "-v",
                f"{FIXTURES}:/srv/preflight:ro",
                "-v",
                "/var/run/docker.sock:/var/run/docker.sock",
                image,
                "sleep",
                "infinity",
            ],
            capture_output=True,
            check=True,
        )


def stop_containers() -> None:
    for name, _tree, _group in HOSTS:
        subprocess.run(["docker", "rm", "-f", f"pf-bench-{name}"], capture_output=True, check=False)


def run_playbook(inv: Path, run_dir: Path) -> tuple[float, int, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_FORCE_COLOR="0",
    )
    cmd = [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        str(inv),
        str(REPO / "playbooks" / "preflight.yml"),
        "-e",
        f"disagg_run_dir={run_dir}",
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    return time.monotonic() - started, proc.returncode, proc.stdout + proc.stderr


def children_cpu() -> float:
    """User + system CPU seconds of all finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_reports(run_dir: Path) -> list[str]:
    """Problems with the per-host reports (empty when every host shows exactly its faults)."""
    problems = []
    for name, tree, _group in HOSTS:
        path = run_dir / "preflight" / f"{name}.json"
        if not path.exists():
            problems.append(f"{name}: no report")
            continue
        checks = [f["check"] for f in json.loads(path.read_text())["findings"]]
        if checks != EXPECTED[tree]:
            problems.append(f"{name}: findings {checks}, expected {EXPECTED[tree]}")
    if not (run_dir / "preflight" / "preflight.md").exists():
        problems.append("no preflight.md")
    return problems


def bench(transport: str, runs: int) -> dict:
    python = str(VENV_BIN / "python") if transport == "local" else "/usr/bin/python3"
    image = None
    if transport == "docker":
        image = base_image()
        start_containers(image)
    times, problems, loads, cpus = [], [], [], []
    try:
        with tempfile.TemporaryDirectory(prefix="preflight-bench-") as tmp:
            inv = Path(tmp) / "inventory.json"
            inv.write_text(json.dumps(inventory(transport, python), indent=2))
            for i in range(runs):
                run_dir = Path(tmp) / f"run-{i}"
                loads.append(os.getloadavg()[0])
                cpu_before = children_cpu()
                seconds, rc, output = run_playbook(inv, run_dir)
                cpus.append(children_cpu() - cpu_before)
                if rc != 0:
                    problems.append(f"run {i}: ansible-playbook exited {rc}: {output[-2000:]}")
                problems += [f"run {i}: {p}" for p in check_reports(run_dir)]
                times.append(seconds)
                print(f"{transport} run {i + 1}/{runs}: {seconds:.2f} s rc={rc}", file=sys.stderr)
    finally:
        if transport == "docker":
            stop_containers()
    return {
        "transport": transport,
        "image": image,
        "times": times,
        "problems": problems,
        "load": statistics.median(loads),
        "cpu": statistics.median(cpus),
        "median": statistics.median(times),
        "max": max(times),
        "min": min(times),
    }


def render(results: list[dict], runs: int) -> str:
    lines = [
        "# Preflight over 4 hosts: wall time",
        "",
        f"Measured by `bench/preflight_time.py` on {time.strftime('%Y-%m-%d %H:%M UTC')}"
        f" (this machine: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {runs} runs per transport). Target: < {TARGET_S:.0f} s.",
        "",
        "Each run is `ansible-playbook playbooks/preflight.yml` (warn mode, forks 16) over 4 hosts"
        " replaying the fixture trees: 2 fit (amd-smi JSON, 8x MI300X, 8x ConnectX-7) and 2 unfit"
        " (rocm-smi fallback, 8 planted faults). Every run's reports were checked: each fit host"
        " has no finding and each unfit host exactly its 8.",
        "",
        "| transport | runs | min s | median s | max s | median < 15 s | max < 15 s |"
        " controller CPU s | report check | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ok_median = "yes" if r["median"] < TARGET_S else "NO"
        ok_max = "yes" if r["max"] < TARGET_S else "no"
        check = "all exact" if not r["problems"] else f"{len(r['problems'])} problems"
        lines.append(
            f"| {r['transport']} | {len(r['times'])} | {r['min']:.2f} | "
            f"{r['median']:.2f} | {r['max']:.2f} | {ok_median} | {ok_max} | {r['cpu']:.1f} | "
            f"{check} | {r['load']:.1f} |"
        )
    lines += [
        "",
        "Transports:",
        "",
        "- `local`: 4 inventory hosts with `ansible_connection: local`; Docker checks query"
        " the real daemon on `/var/run/docker.sock`.",
        "- `docker`: 4 containers of the local base image"
        + (f" (`{results[-1]['image']}`)" if results[-1].get("image") else "")
        + " reached with `community.docker.docker_api` (pipelining on), the fixtures and the"
        " Docker socket mounted.",
        "- `load avg`: the 1-minute load average before each run (median). This machine"
        " (2 CPUs) is shared with other work, so the wall times are an upper bound.",
        "- `controller CPU s`: user+system CPU of ansible-playbook and its children (median);"
        " with `local` that includes the modules, with `docker` the modules run in the"
        " containers and are not counted.",
        "",
    ]
    for r in results:
        for p in r["problems"]:
            lines.append(f"- problem ({r['transport']}): {p[:300]}")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=["local", "docker", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="print, do not write the report")
    args = parser.parse_args(argv)
    transports = ["local", "docker"] if args.transport == "both" else [args.transport]
    if "docker" in transports and not shutil.which("docker"):
        print("docker CLI not found: skipping the docker transport", file=sys.stderr)
        transports.remove("docker")
    results = [bench(t, args.runs) for t in transports]
    text = render(results, args.runs)
    if args.no_report:
        print(text)
    else:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(text)
        print(f"wrote {REPORT}", file=sys.stderr)
    failed = any(r["problems"] or r["median"] >= TARGET_S for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
