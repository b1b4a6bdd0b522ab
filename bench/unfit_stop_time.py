#!/usr/bin/env python
"""Time how fast an unfit replayed host stops ``playbooks/deploy.yml`` (issue 11, item 6).

The measurement runs on its own clone of ``inventories/rehearsal-mi300x`` (``scripts/cluster.py
clone``, named ``pdm``, 172.29.230.0/24): four host containers replaying the recorded MI300X +
CX-7 tree ``tests/fixtures/preflight/trees/replay-fit``. For each unfit case one host's
``rehearsal_replay_tree`` is pointed at a variant that ``build_trees.py --variant`` writes
(``cluster.py up`` recreates only that host, untimed), no deploy container runs (teardown,
untimed), then the time is taken from the start of ``ansible-playbook playbooks/deploy.yml`` to
its exit. Every run is checked: the exit code is not 0, the output names the host, the check
and the fix, and no worker container exists afterwards.

Cases: a port DOWN (prefill-1, mlx5_3), a GID index that differs between the decode hosts
(decode-2's RoCE v2 IPv4 GID at index 5, decode-1's at 3), 7 GPUs (decode-1).

Usage::

    .venv/bin/python bench/unfit_stop_time.py [--repeat 3] [--report FILE]

(default report: bench/reports/unfit_stop_time.md)

Target (issue 11, item 6): each unfit host stops the deploy in under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLUSTER_PY = REPO / "scripts" / "cluster.py"
BUILD_TREES = REPO / "tests" / "fixtures" / "preflight" / "build_trees.py"
INVENTORY = REPO / "inventories" / "rehearsal-mi300x"
REPLAY_FIT = "tests/fixtures/preflight/trees/replay-fit"
NAME = "pdm"
SUBNET = "172.29.230.0/24"
LABEL = f"io.inferops.disagg.rehearsal={NAME}"
DEFAULT_REPORT = REPO / "bench" / "reports" / "unfit_stop_time.md"
TARGET_S = 30.0


@dataclass(frozen=True)
class Case:
    """One unfit replayed host: the variant tree, the host it goes on, what must be named."""

    name: str
    variant: str
    host: str
    gate: str
    expected: tuple[str, ...]


CASES = (
    Case("port DOWN", "replay-port-down", "prefill-1", "preflight (enforce)",
         ("prefill-1: rdma.port_state:", "mlx5_3/1 DOWN", "fix:")),
    Case("GID index differs across decode hosts", "replay-gid-index-5", "decode-2",
         "preflight (enforce): the decode hosts' derived launch settings disagree",
         ("launch.mc_gid_index: the decode hosts would use different MC_GID_INDEX values",
          "decode-1 = 3; decode-2 = 5", "fix:")),
    Case("7 GPUs", "replay-7gpu", "decode-1", "preflight (enforce)",
         ("decode-1: gpu.count: found 7 GPUs", "fix:")),
)


def log(message: str) -> None:
    """One progress line on stderr."""
    print(f"unfit_stop_time: {message}", file=sys.stderr, flush=True)


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in the repository; raise with its output when ``check`` and it fails."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(a) for a in argv], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc


def images_env() -> Path:
    """Where scripts/rehearsal_image.py keeps the image refs (its work directory)."""
    out = run(sys.executable, REPO / "scripts" / "rehearsal_image.py", "--env-file").stdout
    return Path(out.strip())


def workers() -> list[str]:
    """Names of this cluster's prefill and decode worker containers (any state)."""
    out = run("docker", "ps", "-a", "--filter", f"label={LABEL}", "--format",
              '{{.Names}}\t{{.Label "io.inferops.disagg.component"}}').stdout
    return [line.split("\t")[0] for line in out.splitlines()
            if line.split("\t")[-1] in ("prefill", "decode")]


def set_trees(inventory: Path, trees: dict[str, str]) -> None:
    """Point each host's rehearsal_replay_tree at replay-fit, or at ``trees[host]``."""
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    for group in hosts["all"]["children"]["rehearsal_hosts"]["children"].values():
        for host, hostvars in group["hosts"].items():
            hostvars["rehearsal_replay_tree"] = trees.get(host, REPLAY_FIT)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))


def playbook(inventory: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run one of the collection's playbooks on ``inventory`` (not checked)."""
    return run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / name, *extra,
               check=False)


def first_line(output: str, needle: str) -> str:
    """The first output line holding ``needle``, whitespace collapsed (for the report)."""
    flat = " ".join(output.split())
    start = flat.find(needle)
    if start < 0:
        return ""
    ends = [i for i in (flat.find("'", start), flat.find('"', start),
                        flat.find(" Origin: ", start)) if i > 0]
    return flat[start:min(ends) if ends else start + 400]


def measure(inventory: Path, work: Path, case: Case, repeat: int) -> dict:
    """Put the case's tree on its host, then time ``repeat`` failing deploys."""
    tree = work / case.variant
    run(sys.executable, BUILD_TREES, "--variant", case.variant, "--dest", tree)
    set_trees(inventory, {case.host: str(tree)})
    run(sys.executable, CLUSTER_PY, "up", "-i", inventory, "--no-build")
    seconds, message = [], ""
    for index in range(repeat):
        playbook(inventory, "teardown.yml")
        if workers():
            raise RuntimeError(f"workers left before the run: {workers()}")
        started = time.monotonic()
        proc = playbook(inventory, "deploy.yml", "-e", f"disagg_runs_dir={work / 'runs'}",
                        "-e", f"disagg_run_id={case.variant}-{index}")
        elapsed = time.monotonic() - started
        flat = " ".join(proc.stdout.split())
        missing = [text for text in case.expected if text not in flat]
        if proc.returncode == 0 or missing:
            raise RuntimeError(f"{case.name}: rc={proc.returncode}, not named: {missing}\n"
                               f"{proc.stdout[-4000:]}")
        if workers():
            raise RuntimeError(f"{case.name}: worker containers were created: {workers()}")
        seconds.append(elapsed)
        message = first_line(proc.stdout, case.expected[0])
        log(f"{case.name} run {index + 1}: stopped after {elapsed:.1f} s, no worker created")
    return {"case": case, "seconds": seconds, "message": message}


def write_report(path: Path, results: list[dict], load: tuple[float, float], image: str) -> None:
    """Write the Markdown report."""
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for r in results:
        s = r["seconds"]
        rows.append(f"| {r['case'].name} | {r['case'].host} | {r['case'].gate} | {len(s)} | "
                    f"{min(s):.1f} | {statistics.median(s):.1f} | {max(s):.1f} | "
                    f"{'yes' if max(s) < TARGET_S else 'NO'} | none |")
    target = f"{TARGET_S:.0f} s"
    messages = "\n".join(f"{r['case'].name}:\n    {r['message']}" for r in results)
    path.write_text(f"""# Unfit replayed host: how fast the deploy stops

Measured by `bench/unfit_stop_time.py` on {now} (this machine: {os.cpu_count()} CPUs, Python
{platform.python_version()}, 1-minute load average {load[0]:.1f} before and {load[1]:.1f} after;
other jobs share it, so the times are an upper bound).
Target (issue 11, item 6): each unfit host stops the deploy in < {TARGET_S:.0f} s.

Cluster: a clone of `inventories/rehearsal-mi300x` (1 proxy, 1 prefill, 2 decode host
containers reached over SSH, each replaying the recorded MI300X + CX-7 tree `replay-fit`;
preflight in enforce mode with the KV path probe over TCP; image `{image}`). Per case, one host
replays a variant written by `tests/fixtures/preflight/build_trees.py --variant`; the time is
`ansible-playbook playbooks/deploy.yml` from start to exit (run record, validation, preflight:
the fact modules and the derivation of each worker host's launch settings; the KV probe is not
started once the run must stop), with no deploy container
running before. Every run was checked: exit code not 0, host, check and fix named, no worker
container afterwards (column "workers": worker containers created).

| case | unfit host | stopped by | runs | min s | median s | max s | max < {target} | workers |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

What each run printed (the first line naming the host, check and fix):

```text
{messages}
```
""")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="unfit_stop_time.") as tmp:
        work = Path(tmp)
        inventory = work / "rehearsal-mi300x"
        run(sys.executable, CLUSTER_PY, "clone", "-i", INVENTORY, "--dest", inventory,
            "--name", NAME, "--subnet", SUBNET)
        run(sys.executable, CLUSTER_PY, "down", "-i", inventory, check=False)
        image = dict(line.split("=", 1) for line in images_env().read_text().split())
        (inventory / "group_vars" / "all" / "zz_bench.yml").write_text(
            yaml.safe_dump({"disagg_image": image["REHEARSAL_IMAGE"]}))
        load_before = os.getloadavg()
        try:
            run(sys.executable, CLUSTER_PY, "up", "-i", inventory, "--no-build")
            results = [measure(inventory, work, case, args.repeat) for case in CASES]
        finally:
            playbook(inventory, "teardown.yml")
            run(sys.executable, CLUSTER_PY, "down", "-i", inventory, check=False)
        load_after = os.getloadavg()
    write_report(args.report, results, (load_before[0], load_after[0]), image["REHEARSAL_IMAGE"])
    print(json.dumps([{"case": r["case"].name, "seconds": [round(s, 1) for s in r["seconds"]]}
                      for r in results]))
    log(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
