"""Unit tests of the KV path probe: patterns, digests, the receiver's lease and the sender's
results, with an in-memory stand-in for the Mooncake engine (tests/integration/test_kvprobe.py
runs the real one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "roles" / "preflight" / "files"))
import kvprobe  # noqa: E402  (the preflight role's probe script, shipped in its files/)

from tests.conftest import free_port

SOURCE = Path(kvprobe.__file__)


class FakeEngine:
    """Mooncake stand-in: buffers are bytearrays in one process-wide address space."""

    memory: dict[int, bytearray] = {}
    sessions: dict[str, FakeEngine] = {}
    next_addr = 1 << 20
    next_port = 15000
    corrupt = False

    def __init__(self, host: str, protocol: str, device: str = "") -> None:
        self.protocol, self.device, self.hcas = protocol, device, None
        FakeEngine.next_port += 1
        self.session = f"{host}:{FakeEngine.next_port}"
        FakeEngine.sessions[self.session] = self

    @classmethod
    def _locate(cls, addr: int) -> tuple[bytearray, int]:
        for base, buf in cls.memory.items():
            if base <= addr < base + len(buf):
                return buf, addr - base
        raise AssertionError(f"bad address {addr}")

    def allocate(self, nbytes: int) -> int:
        addr = FakeEngine.next_addr
        FakeEngine.next_addr += nbytes + (1 << 20)
        FakeEngine.memory[addr] = bytearray(nbytes)
        return addr

    def fill(self, addr: int, total: int, seed: str) -> str:
        buf, off = self._locate(addr)
        data = b"".join(kvprobe.pattern(seed, i, n)
                        for i, (_, n) in enumerate(kvprobe.spans(total, kvprobe.CHUNK_BYTES)))
        buf[off:off + total] = data
        return kvprobe.expected_digest(seed, total)

    def digest(self, addr: int, total: int) -> str:
        import hashlib

        buf, off = self._locate(addr)
        h = hashlib.blake2b(digest_size=16)
        for o, n in kvprobe.spans(total, kvprobe.CHUNK_BYTES):
            h.update(bytes(buf[off + o:off + o + n]))
        return h.hexdigest()

    def write(self, target: str, src: int, dst: int, total: int, block: int) -> None:
        if target not in FakeEngine.sessions:
            raise kvprobe.ProbeError(f"Mooncake batch_transfer_sync_write to {target} returned -1")
        sbuf, soff = self._locate(src)
        dbuf, doff = self._locate(dst)
        dbuf[doff:doff + total] = sbuf[soff:soff + total]
        if FakeEngine.corrupt:
            dbuf[doff] ^= 0xFF


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeEngine]:
    FakeEngine.memory, FakeEngine.sessions, FakeEngine.corrupt = {}, {}, False
    monkeypatch.setattr(kvprobe, "Engine", FakeEngine)
    return FakeEngine


@pytest.fixture
def receiver(fake: type[FakeEngine]):
    """A receiver with a 1 MiB buffer on a free port, its control server in a thread."""
    port = free_port()
    args = kvprobe.build_parser().parse_args(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--buffer-bytes", "1M",
         "--lifetime", "30"])
    done = threading.Event()
    stop = threading.Event()

    def run() -> None:
        engine = kvprobe.Engine(args.host, args.protocol, args.device)
        rx = kvprobe.Receiver(engine, args.buffer_bytes, args.lease_seconds)
        import http.server

        server = http.server.ThreadingHTTPServer((args.host, args.port), kvprobe._handler(rx))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        done.set()
        stop.wait()
        server.shutdown()
        server.server_close()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(5)
    yield f"127.0.0.1:{port}"
    stop.set()


def _send(to: str, *extra: str) -> tuple[int, dict]:
    args = kvprobe.build_parser().parse_args(
        ["send", "--to", to, "--bytes", "256K", "--block-bytes", "64K", "--repeat", "2",
         "--seed", "s", *extra])
    out = []
    orig = kvprobe._emit
    kvprobe._emit = out.append
    try:
        code = kvprobe.run_send(args)
    finally:
        kvprobe._emit = orig
    assert len(out) == 1
    return code, out[0]


def test_spans_cover_the_total_in_order() -> None:
    assert list(kvprobe.spans(10, 4)) == [(0, 4), (4, 4), (8, 2)]
    assert list(kvprobe.spans(8, 4)) == [(0, 4), (4, 4)]
    assert list(kvprobe.spans(0, 4)) == []


def test_pattern_is_deterministic_and_depends_on_seed_and_chunk() -> None:
    assert kvprobe.pattern("a", 0, 32) == kvprobe.pattern("a", 0, 32)
    assert kvprobe.pattern("a", 0, 32) != kvprobe.pattern("b", 0, 32)
    assert kvprobe.pattern("a", 0, 32) != kvprobe.pattern("a", 1, 32)
    assert len(kvprobe.pattern("a", 3, 1000)) == 1000
    assert kvprobe.expected_digest("a", 5 << 20) != kvprobe.expected_digest("a", 5 << 20 - 1)


@pytest.mark.parametrize(("text", "want"), [
    ("10.0.0.21:18990", ("10.0.0.21", 18990)),
    ("[fe80::1]:80", ("fe80::1", 80)),
])
def test_parse_peer(text: str, want: tuple[str, int]) -> None:
    assert kvprobe.parse_peer(text) == want


@pytest.mark.parametrize("text", ["nonsense", "10.0.0.1:", ":80", "10.0.0.1:0", "h:99999"])
def test_parse_peer_rejects(text: str) -> None:
    with pytest.raises(kvprobe.ProbeError, match="IP:PORT"):
        kvprobe.parse_peer(text)


@pytest.mark.parametrize(("text", "want"), [("4096", 4096), ("64M", 64 << 20), ("1GiB", 1 << 30),
                                            ("512k", 512 << 10), ("2mb", 2 << 20)])
def test_sizes(text: str, want: int) -> None:
    assert kvprobe._size(text) == want


def test_receiver_leases_one_sender_at_a_time(fake: type[FakeEngine]) -> None:
    rx = kvprobe.Receiver(fake("127.0.0.1", "tcp"), 1024, 60)
    status, first = rx.begin({"bytes": 512, "sender": "prefill-1"})
    assert status == 200 and first["session"] == rx.engine.session
    status, body = rx.begin({"bytes": 512, "sender": "prefill-2"})
    assert status == 409 and "prefill-1" in body["error"]
    status, body = rx.verify({"token": "wrong", "bytes": 512, "digest": "x"})
    assert status == 409
    status, body = rx.verify({"token": first["token"], "bytes": 512, "digest": "x"})
    assert status == 200 and body["verified"] is False  # nothing was written
    assert rx.begin({"bytes": 512, "sender": "prefill-2"})[0] == 200


def test_receiver_lease_expires(fake: type[FakeEngine]) -> None:
    rx = kvprobe.Receiver(fake("127.0.0.1", "tcp"), 1024, 60)
    assert rx.begin({"bytes": 1, "sender": "a", "lease_seconds": 0})[0] == 200
    assert rx.begin({"bytes": 1, "sender": "b"})[0] == 200


def test_receiver_refuses_more_than_its_buffer(fake: type[FakeEngine]) -> None:
    rx = kvprobe.Receiver(fake("127.0.0.1", "tcp"), 1024, 60)
    status, body = rx.begin({"bytes": 2048})
    assert status == 413 and "--buffer-bytes" in body["error"]
    assert rx.begin({"bytes": "x"})[0] == 400


def test_send_reports_bandwidth_and_verifies(receiver: str) -> None:
    code, result = _send(receiver)
    assert code == 0, result
    assert result["ok"] and result["verified"]
    assert result["bytes"] == 2 * 256 * 1024 and result["repeat"] == 2
    assert result["seconds"] > 0 and result["gbps"] > 0
    assert result["gbps"] == pytest.approx(result["bytes"] * 8 / result["seconds"] / 1e9,
                                           rel=1e-2)
    assert result["session"].startswith("127.0.0.1:") and result["protocol"] == "tcp"
    assert "error" not in result and "phase" not in result
    # The lease ended: a second sender gets the buffer at once.
    assert _send(receiver, "--wait", "1")[0] == 0


def test_send_reports_corrupted_bytes(receiver: str, fake: type[FakeEngine]) -> None:
    fake.corrupt = True
    code, result = _send(receiver)
    assert code == 1 and not result["ok"] and result["verified"] is False
    assert f"receiver {receiver}" in result["error"] and "different bytes" in result["error"]


def test_send_more_than_the_receiver_holds(receiver: str) -> None:
    code, result = _send(receiver, "--bytes", "2M")
    assert code == 1
    assert result["error"] == (f"receiver {receiver} refused the transfer: 2097152 bytes "
                               "requested but the receiver's buffer holds 1048576 (start it with "
                               "a larger --buffer-bytes)")


def test_send_protocol_mismatch(receiver: str) -> None:
    code, result = _send(receiver, "--protocol", "rdma")
    assert code == 1 and "speaks tcp, this sender rdma" in result["error"]
    assert _send(receiver, "--wait", "1")[0] == 0  # the lease was given back


def test_send_to_a_closed_port_fails_within_wait() -> None:
    port = free_port()
    code, result = _send(f"127.0.0.1:{port}", "--wait", "1")
    assert code == 1 and result["ok"] is False and result["gbps"] is None
    assert result["error"].startswith(f"receiver 127.0.0.1:{port}: cannot reach its control "
                                      "port:")
    assert "gave up after 1 s" in result["error"]


def test_send_mooncake_failure_names_the_session(receiver: str, fake: type[FakeEngine]) -> None:
    (session,) = fake.sessions  # the receiver's: make it unknown, as a dead peer's would be
    fake.sessions.clear()
    code, result = _send(receiver)
    assert code == 1
    assert result["error"] == (f"receiver {receiver}: Mooncake batch_transfer_sync_write to "
                               f"{session} returned -1")
    assert result["phase"].startswith(f"the first write to Mooncake session {session}")
    assert _send(receiver, "--wait", "1")[1]["error"] == result["error"]  # lease given back


def test_module_runs_from_its_source_text_alone(tmp_path: Path) -> None:
    """How the role runs it in an image without this package: the file's text in an env var."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PD_KVPROBE_SOURCE": SOURCE.read_text()}
    loader = "import os; exec(compile(os.environ['PD_KVPROBE_SOURCE'], 'kvprobe.py', 'exec'))"
    proc = subprocess.run([sys.executable, "-I", "-c", loader, "send", "--to",
                           f"127.0.0.1:{port}", "--wait", "0.5"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert "cannot reach its control port" in result["error"]
    assert proc.stderr.startswith("kvprobe: receiver 127.0.0.1:")


class FakeTransferEngine:
    """mooncake.engine.TransferEngine stand-in for Engine's own checks."""

    rc = 0
    topology = '{"cpu:0": [[], []]}'

    def initialize(self, host: str, metadata: str, protocol: str, device: str) -> int:
        return FakeTransferEngine.rc

    def get_rpc_port(self) -> int:
        return 15123

    def get_local_topology(self, device_name: str | None = None) -> str:
        return FakeTransferEngine.topology


@pytest.fixture
def fake_mooncake(monkeypatch: pytest.MonkeyPatch) -> type[FakeTransferEngine]:
    import types

    module = types.ModuleType("mooncake.engine")
    module.TransferEngine = FakeTransferEngine
    monkeypatch.setitem(sys.modules, "mooncake", types.ModuleType("mooncake"))
    monkeypatch.setitem(sys.modules, "mooncake.engine", module)
    FakeTransferEngine.rc, FakeTransferEngine.topology = 0, '{"cpu:0": [[], []]}'
    return FakeTransferEngine


REAL_TOPOLOGY = ('{"cpu:0": [["mlx5_0", "mlx5_1"], ["mlx5_2"]], "cpu:1": [["mlx5_2"], '
                 '["mlx5_0", "mlx5_1"]], "cuda:0": [["mlx5_0"], []]}')


@pytest.mark.parametrize(("text", "want"), [
    (REAL_TOPOLOGY, ["mlx5_0", "mlx5_1", "mlx5_2"]),
    ('{"cpu:0": [[], []]}', []),  # what Mooncake 0.3.13 reports on a host without RDMA
    ("not json", []),
    ("", []),
])
def test_topology_hcas(text: str, want: list[str]) -> None:
    assert kvprobe.topology_hcas(text) == want


def test_engine_session_and_tcp(fake_mooncake: type[FakeTransferEngine]) -> None:
    engine = kvprobe.Engine("10.0.0.5", "tcp")
    assert engine.session == "10.0.0.5:15123" and engine.hcas is None


def test_engine_initialize_failure_names_the_call(fake_mooncake: type[FakeTransferEngine]) -> None:
    fake_mooncake.rc = -1
    with pytest.raises(kvprobe.ProbeError, match=r"initialize\('10.0.0.5', 'P2PHANDSHAKE', "
                       r"'rdma', 'mlx5_0'\) returned -1; check the RDMA devices"):
        kvprobe.Engine("10.0.0.5", "rdma", "mlx5_0")


def test_engine_rdma_without_devices_is_an_error(fake_mooncake: type[FakeTransferEngine]) -> None:
    """Mooncake itself falls back to TCP without a word; the probe must not measure that."""
    with pytest.raises(kvprobe.ProbeError, match="protocol rdma but Mooncake found no RDMA "
                       "device on 10.0.0.5 .it would fall back to TCP."):
        kvprobe.Engine("10.0.0.5", "rdma")


def test_engine_rdma_devices(fake_mooncake: type[FakeTransferEngine]) -> None:
    fake_mooncake.topology = REAL_TOPOLOGY
    assert kvprobe.Engine("10.0.0.5", "rdma", "mlx5_0,mlx5_2").hcas == ["mlx5_0", "mlx5_1",
                                                                        "mlx5_2"]
    with pytest.raises(kvprobe.ProbeError, match="RDMA device.s. mlx5_7 not found by Mooncake "
                       "on 10.0.0.5 .it found mlx5_0, mlx5_1, mlx5_2.; fix --device"):
        kvprobe.Engine("10.0.0.5", "rdma", "mlx5_0,mlx5_7")


def test_engine_without_mooncake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mooncake.engine", None)
    with pytest.raises(kvprobe.ProbeError, match="cannot import mooncake.engine"):
        kvprobe.Engine("10.0.0.5", "tcp")
