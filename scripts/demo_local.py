#!/usr/bin/env python
"""Local PD demo on loopback: prefill + decode rehearsal engines behind the real sglang-router.

Starts three processes on 127.0.0.1, waits on the router's /readiness (no sleeps), sends one
/generate through the router and prints the path the request took: router -> prefill
(bootstrap room) -> Mooncake KV write -> decode (verified) -> answer. Stops everything at the
end unless --keep is given. The engines are the rehearsal engine: not inference.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from pd_rehearsal.model import write_model_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> float:
    """Poll ``url`` until 200; returns seconds waited; exits with the log tail on failure."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            sys.exit(f"demo: {log.name} exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(0.1)
    sys.exit(f"demo: {url} not ready after {timeout:.0f}s:\n{log.read_text()[-2000:]}")


def main() -> int:
    """Run the demo."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompt", default="What is the capital of the rehearsal?")
    ap.add_argument("--keep", action="store_true", help="leave the three processes running")
    ns = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pd-demo-"))
    model = write_model_dir(work / "rehearsal-tiny", "rehearsal-tiny")
    p_port, d_port, boot, r_port = (_free_port() for _ in range(4))
    py = sys.executable
    common = [
        "--model-path",
        str(model),
        "--host",
        "127.0.0.1",
        "--log-requests",
        "--rehearsal-startup-seconds",
        "1",
        "--rehearsal-kv-pool-mb",
        "64",
    ]
    specs = {
        "prefill": [
            py,
            "-m",
            "pd_rehearsal",
            *common,
            "--port",
            str(p_port),
            "--disaggregation-mode",
            "prefill",
            "--disaggregation-bootstrap-port",
            str(boot),
        ],
        "decode": [
            py,
            "-m",
            "pd_rehearsal",
            *common,
            "--port",
            str(d_port),
            "--disaggregation-mode",
            "decode",
        ],
    }
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def start(name: str, argv: list[str]) -> None:
        logs[name] = work / f"{name}.log"
        procs[name] = subprocess.Popen(
            argv, stdout=logs[name].open("wb"), stderr=subprocess.STDOUT, env=env
        )
        print(f"demo: started {name:8s} {' '.join(argv[1:4])} ... (log {logs[name]})")

    try:
        for name, argv in specs.items():
            start(name, argv)
        for name, port in (("prefill", p_port), ("decode", d_port)):
            took = _wait(f"http://127.0.0.1:{port}/health", procs[name], logs[name])
            print(f"demo: {name} healthy on :{port} after {took:.1f}s")
        start(
            "router",
            [
                py,
                "-m",
                "sglang_router.launch_router",
                "--pd-disaggregation",
                "--prefill",
                f"http://127.0.0.1:{p_port}",
                str(boot),
                "--decode",
                f"http://127.0.0.1:{d_port}",
                "--host",
                "127.0.0.1",
                "--port",
                str(r_port),
                "--prometheus-port",
                str(_free_port()),
                "--worker-startup-check-interval",
                "1",
            ],
        )
        took = _wait(f"http://127.0.0.1:{r_port}/readiness", procs["router"], logs["router"])
        print(f"demo: router /readiness 200 on :{r_port} after {took:.1f}s")

        body = {"text": ns.prompt, "sampling_params": {"max_new_tokens": 24}}
        answer = requests.post(f"http://127.0.0.1:{r_port}/generate", json=body, timeout=60)
        answer.raise_for_status()
        out = answer.json()
        time.sleep(0.2)  # let both engines flush their log lines
        _print_path(ns.prompt, out, r_port, p_port, d_port, boot, logs)
        if ns.keep:
            print(
                f"demo: left running; router http://127.0.0.1:{r_port} (pids "
                f"{' '.join(str(p.pid) for p in procs.values())})"
            )
            return 0
    finally:
        if not ns.keep:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                p.wait(10)
    return 0


def _print_path(
    prompt: str, out: dict, r_port: int, p_port: int, d_port: int, boot: int, logs: dict[str, Path]
) -> None:
    room_re = re.compile(r"room (\d+): (.*)")
    p_line = next((m for m in room_re.finditer(logs["prefill"].read_text())), None)
    d_line = next((m for m in room_re.finditer(logs["decode"].read_text())), None)
    room = p_line.group(1) if p_line else "?"
    p_info = requests.get(f"http://127.0.0.1:{p_port}/get_server_info", timeout=5).json()
    d_info = requests.get(f"http://127.0.0.1:{d_port}/get_server_info", timeout=5).json()
    meta = out["meta_info"]
    print("\nThe request's path (rehearsal engine: real router, real Mooncake, no inference):")
    print(f"  1. client  -> router  :{r_port}  POST /generate {prompt!r}")
    print(
        f"  2. router  -> prefill :{p_port} and decode :{d_port}, "
        f"bootstrap 127.0.0.1:{boot} room {room}"
    )
    print(
        f"  3. prefill -> decode  Mooncake {p_info['mooncake_session_id']} -> "
        f"{d_info['mooncake_session_id']}: {p_line.group(2) if p_line else '?'}"
    )
    print(f"  4. decode  {d_line.group(2) if d_line else '?'}")
    print(
        f"  5. decode  -> router -> client: {meta['completion_tokens']} tokens, "
        f"finish {meta['finish_reason']['type']}, {meta['e2e_latency'] * 1000:.0f} ms"
    )
    print(f"\nanswer: {out['text']!r}")
    print(
        f"KV bytes sent by prefill = {p_info['counters']['kv_bytes_sent']}, "
        f"received by decode = {d_info['counters']['kv_bytes_received']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
