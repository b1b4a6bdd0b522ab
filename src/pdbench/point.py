"""Run one sweep point: a marker line, then bench_serving, everything kept in one log.

``python -m pdbench point --log L --jsonl J --marker "..." [--timeout S] -- <bench_serving args>``

* starts the log afresh with the marker (the seed's ``[RUNNING] prompts N isl I osl O con C ...``
  line, so the seed's own parser can read our logs too) and the exact command line;
* runs ``python -m pdbench.bench_serving`` (SGLang's client, see that module) with
  ``--output-file J`` (J is emptied first), offline (``HF_HUB_OFFLINE=1``,
  ``TRANSFORMERS_OFFLINE=1``), stdout and stderr appended to the log as they come;
* kills it after ``--timeout`` seconds (then exit code 124, and a line saying so in the log);
* parses the log and prints one JSON line: exit code, successful/failed requests, output
  throughput, the known request errors (``known_errors``, e.g. ``transfer_encoding_400``; for a
  run without a result block, from the whole log), or the parse error. Exit code:
  bench_serving's, or 3 when it exited 0 but the log has no complete result block.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchparse import parse_serving, scan_known_errors


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of the ``point`` sub-command."""
    ap.add_argument("--log", required=True, type=Path)
    ap.add_argument("--jsonl", required=True, type=Path, help="bench_serving --output-file")
    ap.add_argument("--marker", default="", help="first line of the log")
    ap.add_argument("--timeout", type=float, default=0, help="seconds; 0 = none")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="-- then bench_serving's arguments")


def main(ns: argparse.Namespace) -> int:
    """Run the point; print its summary line."""
    args = list(ns.args)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise SystemExit("point: give bench_serving's arguments after --")
    if "--output-file" in args:
        raise SystemExit("point: --output-file is set by point (--jsonl)")
    ns.log.parent.mkdir(parents=True, exist_ok=True)
    ns.jsonl.parent.mkdir(parents=True, exist_ok=True)
    ns.jsonl.write_text("")
    argv = [sys.executable, "-m", "pdbench.bench_serving", *args, "--output-file", str(ns.jsonl)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    started = time.time()
    with ns.log.open("w") as log:
        if ns.marker:
            log.write(ns.marker.rstrip("\n") + "\n")
        log.write(f"[pdbench] {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {shlex.join(argv)}\n")
        log.flush()
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=ns.timeout or None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = 124
            log.write(f"\n[pdbench] timeout: bench_serving killed after {ns.timeout:g} s\n")
        log.write(f"[pdbench] exit code {rc} after {time.time() - started:.1f} s\n")
    summary: dict[str, object] = {
        "rc": rc,
        "log": str(ns.log),
        "jsonl": str(ns.jsonl),
        "seconds": round(time.time() - started, 1),
    }
    text = ns.log.read_text(errors="replace")
    try:
        rows = parse_serving(text, str(ns.log))
    except ValueError as exc:
        rows = []
        summary["error"] = str(exc)
    if rows:
        row = rows[-1]
        for key in (
            "successful_requests",
            "failed_requests",
            "num_prompts",
            "max_concurrency",
            "output_throughput",
            "duration_s",
            "median_ttft_ms",
            "median_itl_ms",
        ):
            summary[key] = row.get(key)
        summary["known_errors"] = row.get("known_errors") or {}
    else:
        summary["known_errors"] = scan_known_errors(text)
    if not rows and "error" not in summary:
        summary["error"] = "no 'Serving Benchmark Result' block in the log"
    if rc == 0 and "error" in summary:
        rc = summary["rc"] = 3
    print(json.dumps(summary), flush=True)
    return rc
