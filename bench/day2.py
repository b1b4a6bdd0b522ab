#!/usr/bin/env python
"""Measure day-2 operations on a live rehearsal service under a steady streaming load.

On a rehearsal cluster of its own (``pdw``, 172.29.228.0/24, host containers for 3P2D), with
``roles/benchmark/files/drill_load.py`` sending without pause through the router (``--clients``
concurrent streams, ``--prompt-words`` words in, ``--max-new-tokens`` out, temperature 0), it
measures, each against the p99 TTFT of the steady load before it:

* scaling 2P1D -> 3P2D -> 2P1D;
* a rolling update of every worker of 2P2D;
* a rolling update of every worker of 2P1D (the only decode surge-first: a stand-in on shifted
  ports serves while it is replaced);
* every fault drill of ``playbooks/drill.yml`` on 2P1D (the drill runs its own load, with the
  same settings).

For each: requests sent, failed and wrong (a 200 answer unlike the same prompt's answer before),
the operation's wall time, p99 TTFT steady and during. The report is ``bench/reports/day2.md``.

Usage::

    .venv/bin/python bench/day2.py [--clients 64] [--report bench/reports/day2.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ansible.plugins.loader import init_plugin_loader  # noqa: E402

init_plugin_loader([str(REPO / ".cache" / "collections")])

from ansible_collections.inferops.disagg.plugins.module_utils import _drill  # noqa: E402
from tests.integration.rehearsal import (  # noqa: E402
    CLUSTER_PY,
    clone,
    ok,
    playbook,
    run,
    subset,
)

NAME = "pdw"
SUBNET = "172.29.228.0/24"
ROUTER = "http://172.29.228.10:30000"
LOAD = REPO / "roles" / "benchmark" / "files" / "drill_load.py"
DRILLS = ("kill_decode", "kill_prefill", "stop_router", "kv_link_down", "slow_decode")
NO_PREFLIGHT = ("--skip-tags", "preflight")
# The report's generated part ends here; what follows it is written by hand and kept.
MARKER = "<!-- bench/day2.py writes the part above; the part below is written by hand -->"


def log(message: str) -> None:
    print(f"day2: {message}", flush=True)


class Load:
    """drill_load.py in the background; ``stop()`` returns its records."""

    def __init__(self, out: Path, args: argparse.Namespace) -> None:
        self.out, self.stop_file = out, out.with_suffix(".stop")
        self.proc = subprocess.Popen([sys.executable, str(LOAD), ROUTER, str(out), "--clients",
                                      str(args.clients), "--max-new-tokens",
                                      str(args.max_new_tokens), "--prompt-words",
                                      str(args.prompt_words), "--timeout", "30", "--stream",
                                      "--stop-file", str(self.stop_file)])

    def stop(self) -> list[dict]:
        self.stop_file.touch()
        self.proc.wait(120)
        return _drill.parse_log(self.out.read_text(), str(self.out))


def operation(name: str, work: Path, args: argparse.Namespace, inventory: Path, book: str,
              *extra: str) -> dict:
    """Run one playbook under the load: its figures (module_utils/_drill definitions)."""
    load = Load(work / f"{name}.jsonl", args)
    time.sleep(args.steady)
    start = time.time()
    proc = playbook(inventory, book, *extra)
    end = time.time()
    time.sleep(3)
    records = load.stop()
    summary = _drill.summarize(records, {"inject": start, "restore": end, "healthy": end}, name)
    summary.update(wall_s=round(end - start, 1), rc=proc.returncode,
                   tail=" ".join(proc.stdout.split())[-400:] if proc.returncode else "")
    log(f"{name}: rc {proc.returncode}, {summary['sent']} sent, {summary['failed']} failed, "
        f"{summary['wrong']} wrong, {summary['wall_s']} s")
    return summary


def drill(name: str, inventory: Path, args: argparse.Namespace, spec: tuple[str, ...]) -> dict:
    """playbooks/drill.yml -e drill=NAME with the bench's load settings: its drill.json."""
    settings = {"benchmark_drill_clients": args.clients,
                "benchmark_drill_max_new_tokens": args.max_new_tokens,
                "benchmark_drill_prompt_words": args.prompt_words,
                "benchmark_drill_request_timeout": 30}
    proc = playbook(inventory, "drill.yml", *spec, "-e", f"drill={name}", "-e",
                    json.dumps(settings))
    found = re.search(r"Report: (\S+)/report\.md", " ".join(proc.stdout.split()))
    if proc.returncode or not found:
        log(f"drill {name}: rc {proc.returncode}")
        return {"drill": name, "rc": proc.returncode,
                "tail": " ".join(proc.stdout.split())[-400:]}
    summary = json.loads((Path(found.group(1)) / "drill.json").read_text())
    summary["rc"] = 0
    log(f"drill {name}: {summary['sent']} sent, {summary['failed']} failed, "
        f"{summary['wrong']} wrong")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run every measurement on a fresh cluster and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--steady", type=float, default=10.0,
                        help="seconds of steady load before each operation")
    parser.add_argument("--report", type=Path, default=REPO / "bench" / "reports" / "day2.md")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="day2-"))
    big = clone(work / "3p2d", NAME, SUBNET, xp=3, yd=2)
    two = subset(big, work / "2p2d", ["prefill-3"])
    one = subset(big, work / "2p1d", ["prefill-3", "decode-2"])
    rolled = ("-e", json.dumps({"disagg_container_env_extra": {"DAY2_ROLL": "1"}}))
    rolled2 = ("-e", json.dumps({"disagg_container_env_extra": {"DAY2_ROLL": "2"}}))
    started = time.time()
    load_before = os.getloadavg()
    rows: list[dict] = []
    drills: list[dict] = []
    try:
        run(sys.executable, CLUSTER_PY, "down", "-i", big)
        ok(run(sys.executable, CLUSTER_PY, "up", "-i", big, timeout=1800))
        ok(playbook(one, "deploy.yml"))
        rows.append(operation("scale out 2P1D -> 3P2D", work, args, big, "scale.yml",
                              *NO_PREFLIGHT))
        rows.append(operation("scale in 3P2D -> 2P1D", work, args, big, "scale.yml",
                              *NO_PREFLIGHT, "-e", "disagg_remove_hosts=prefill-3,decode-2"))
        ok(playbook(two, "scale.yml", *NO_PREFLIGHT))
        rows.append(operation("rolling update, 2P2D (every worker)", work, args, two,
                              "rolling_update.yml", *rolled))
        ok(playbook(two, "scale.yml", *NO_PREFLIGHT, *rolled,
                    "-e", "disagg_remove_hosts=decode-2"))
        rows.append(operation("rolling update, 2P1D (every worker; surge for the only decode)",
                              work, args, one, "rolling_update.yml", *rolled2))
        drills = [drill(name, one, args, rolled2) for name in DRILLS]
    finally:
        playbook(big, "teardown.yml")
        run(sys.executable, CLUSTER_PY, "down", "-i", big)
    write_report(args, rows, drills, time.time() - started, load_before)
    return 0


def _v(value: object, unit: str = " s") -> str:
    return "-" if value is None else f"{value}{unit}"


def write_report(args: argparse.Namespace, rows: list[dict], drills: list[dict],
                 wall: float, load_before: tuple[float, float, float]) -> None:
    """bench/reports/day2.md from the measured figures."""
    out = [
        "# Day-2 operations under load (rehearsal cluster)", "",
        f"Measured by `bench/day2.py` on {time.strftime('%Y-%m-%d')}: {platform.node()}, "
        f"{os.cpu_count()} cores, load average {load_before[0]:.2f} before, the whole run "
        f"{wall / 60:.1f} min. The real sglang-router 0.3.2 in PD mode, rehearsal engines "
        "(CPU), Mooncake over TCP, all on this one machine.", "",
        f"Load: `drill_load.py`, {args.clients} concurrent streaming clients through the router, "
        f"{args.prompt_words} words in (about as many tokens), {args.max_new_tokens} tokens out, "
        "temperature 0, client timeout 30 s, no pause between requests. TTFT is the time to "
        "the first streamed event. *Steady* is the load before the operation; *during* is the "
        "requests that started while it ran.", "",
        "## Operations", "",
        "| operation | rc | wall | sent | failed | wrong | p99 TTFT steady | p99 TTFT during |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(f"| {r['drill']} | {r['rc']} | {r['wall_s']} s | {r['sent']} | {r['failed']} "
                   f"| {r['wrong']} | {_v(r['ttft_p99_steady_s'])} | "
                   f"{_v(r['ttft_p99_during_s'])} |")
    out += ["", "## Fault drills (2P1D, `playbooks/drill.yml`)", "",
            "| drill | sent | failed (refused at once) | wrong | router kept sending to it "
            "| service down | first good answer after healthy | full service back | "
            "p99 TTFT steady / during |", "|---|---|---|---|---|---|---|---|---|"]
    for d in drills:
        if d.get("rc"):
            out.append(f"| {d['drill']} | failed: rc {d['rc']} | {d.get('tail', '')} "
                       "| | | | | | |")
            continue
        out.append(f"| {d['drill']} | {d['sent']} | {d['failed']} ({d['refused_by_router']}) "
                   f"| {d['wrong']} | {_v(d['router_kept_sending_s'])} | "
                   f"{'yes' if d['service_down'] else 'no'} | "
                   f"{_v(d['first_good_after_healthy_s'])} | {_v(d['service_back_after_s'])} | "
                   f"{_v(d.get('ttft_p99_steady_s'))} / {_v(d.get('ttft_p99_during_s'))} |")
    out += ["", "Faults: " + "; ".join(f"{d['drill']}: {d.get('fault', '-')}" for d in drills),
            ""]
    # What is written by hand below the marker (findings, earlier runs) is kept.
    kept = ""
    if args.report.is_file() and MARKER in args.report.read_text():
        kept = args.report.read_text().split(MARKER, 1)[1]
    args.report.write_text("\n".join(out) + "\n" + MARKER + kept)
    log(f"report: {args.report}")


if __name__ == "__main__":
    raise SystemExit(main())
