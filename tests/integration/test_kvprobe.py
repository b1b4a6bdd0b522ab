"""Integration: the KV path probe with the real Mooncake transfer engine (TCP) on loopback.

A receiver process (``python roles/preflight/files/kvprobe.py serve``) and sender processes, as the
preflight role runs them in containers: a verified transfer with its bandwidth, two senders
served one after the other, and failures that name the peer and end within their timeouts.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_http

pytestmark = pytest.mark.integration

PROBE_FILE = Path(__file__).resolve().parents[2] / "roles" / "preflight" / "files" / "kvprobe.py"
PROBE = [sys.executable, str(PROBE_FILE)]


def _send(to: str, *extra: str, timeout: float = 120) -> tuple[int, dict, float, str]:
    start = time.monotonic()
    proc = subprocess.run([*PROBE, "send", "--to", to, *extra], capture_output=True, text=True,
                          timeout=timeout)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return proc.returncode, json.loads(lines[0]), time.monotonic() - start, proc.stderr


@pytest.fixture
def receiver(procs) -> str:
    port = free_port()
    rx = procs("kvprobe-serve", [*PROBE, "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--buffer-bytes", "32M", "--lifetime", "300"])
    wait_http(f"http://127.0.0.1:{port}/health", rx, timeout=30)
    return f"127.0.0.1:{port}"


def test_transfer_is_verified_and_bandwidth_reported(receiver: str) -> None:
    code, result, _, err = _send(receiver, "--bytes", "32M", "--repeat", "2")
    assert code == 0, err
    assert result["ok"] is True and result["verified"] is True
    assert result["protocol"] == "tcp"
    assert result["bytes"] == 2 * 32 * 1024**2
    assert result["seconds"] > 0 and result["gbps"] > 0
    assert result["gbps"] == pytest.approx(result["bytes"] * 8 / result["seconds"] / 1e9,
                                           rel=1e-2)
    host, port = result["session"].split(":")
    assert host == "127.0.0.1" and 15000 <= int(port) <= 17000  # Mooncake's rpc port range
    print(f"loopback tcp: {result['gbps']} Gbit/s ({result['bytes']} B in {result['seconds']} s)")


def test_two_senders_take_turns(receiver: str) -> None:
    results: list[tuple[int, dict, float, str]] = []
    threads = [threading.Thread(target=lambda: results.append(
        _send(receiver, "--bytes", "16M", "--repeat", "1", "--wait", "60"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [0, 0], [r[3][-2000:] for r in results]
    assert all(r[1]["verified"] for r in results)


def test_closed_control_port_fails_within_wait() -> None:
    port = free_port()
    code, result, took, err = _send(f"127.0.0.1:{port}", "--wait", "3", timeout=30)
    assert code == 1 and result["ok"] is False and result["gbps"] is None
    assert result["error"] == (f"receiver 127.0.0.1:{port}: cannot reach its control port: "
                               "[Errno 111] Connection refused (gave up after 3 s)")
    assert took < 10
    assert err.strip().endswith(result["error"])


def test_wrong_peer_not_a_probe_fails_clearly(procs) -> None:
    """Something else listens on the port (here: an HTTP server that is not a receiver)."""
    port = free_port()
    other = procs("http", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)])
    wait_http(f"http://127.0.0.1:{port}/", other, timeout=30)
    code, result, took, _ = _send(f"127.0.0.1:{port}", "--wait", "3", timeout=30)
    assert code == 1
    assert result["error"].startswith(f"receiver 127.0.0.1:{port} refused the transfer: HTTP 501")
    assert "is this a kvprobe receiver?" in result["error"]
    assert took < 10


def test_silent_peer_times_out(procs) -> None:
    """A port that accepts and never answers: the control call times out, bounded by --wait."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        code, result, took, _ = _send(f"127.0.0.1:{port}", "--wait", "3", timeout=30)
    assert code == 1
    assert result["error"].startswith(f"receiver 127.0.0.1:{port}: cannot reach its control "
                                      "port: ")
    assert "timed out" in result["error"]
    assert took < 12


def test_mooncake_session_that_hangs_is_cut_by_the_watchdog(procs) -> None:
    """The receiver hands out a Mooncake session whose port accepts and never answers: the
    sender must still end, within --wait + --timeout, naming the session and the phase."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    session = f"127.0.0.1:{hole.getsockname()[1]}"
    port = free_port()
    fake = procs("fake-receiver", [sys.executable, "-c", f"""
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def _ok(self, body):
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data)))
        self.end_headers(); self.wfile.write(data)
    def do_GET(self): self._ok({{"ok": True}})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._ok({{"token": "t", "session": "{session}", "addr": 1 << 40, "protocol": "tcp"}})
http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
"""])
    try:
        wait_http(f"http://127.0.0.1:{port}/health", fake, timeout=30)
        code, result, took, _ = _send(f"127.0.0.1:{port}", "--bytes", "1M", "--wait", "2",
                                      "--timeout", "4", timeout=60)
    finally:
        hole.close()
    assert code == 2
    assert result["error"] == (f"receiver 127.0.0.1:{port}: no result within 6 s (--wait 2 + "
                               f"--timeout 4); hung in the first write to Mooncake session "
                               f"{session} (connection set-up)")
    assert took < 15


def test_receiver_cannot_listen_on_a_busy_port(procs) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        proc = subprocess.run([*PROBE, "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--buffer-bytes", "1M", "--lifetime", "5"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["ready"] is False
    assert out["error"].startswith(f"cannot listen on 127.0.0.1:{port}: ")


@pytest.mark.skipif(any(Path("/sys/class/infiniband").glob("*")),
                    reason="this machine has RDMA devices")
def test_rdma_without_devices_fails_instead_of_falling_back_to_tcp() -> None:
    """Real Mooncake, protocol rdma, no RDMA device: Mooncake would quietly use TCP."""
    proc = subprocess.run([*PROBE, "serve", "--host", "127.0.0.1", "--port", str(free_port()),
                           "--protocol", "rdma", "--buffer-bytes", "1M", "--lifetime", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["error"].startswith("protocol rdma but Mooncake found no RDMA device on "
                                   "127.0.0.1 (it would fall back to TCP)")
