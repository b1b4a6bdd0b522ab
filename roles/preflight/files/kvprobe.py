"""KV path probe: one short, verified Mooncake transfer between two hosts, with its bandwidth.

Prefill pushes KV bytes into decode's memory through the Mooncake transfer engine; this probe does
the same with a buffer of deterministic bytes, so a broken or slow KV path shows before a model is
loaded. Two sides::

    python3 kvprobe.py serve --host 10.0.0.21 --port 18990 [--protocol rdma]
                          [--device mlx5_0,mlx5_1] [--buffer-bytes N]
    python3 kvprobe.py send --to 10.0.0.21:18990 --bytes N [--protocol rdma]
                         [--device mlx5_0,mlx5_1]

``serve`` (on the decode host) initialises a TransferEngine (P2PHANDSHAKE, no metadata server),
allocates a Mooncake-managed buffer and answers on a small HTTP control port:

* ``GET /health``: its Mooncake session (``ip:rpc_port``), protocol and buffer size;
* ``POST /begin``: leases the buffer to one sender (others get 409 and retry), returns the
  session and the buffer address;
* ``POST /verify``: digests what arrived in the buffer, compares it with the sender's digest and
  ends the lease; ``POST /release`` ends a lease without verifying.

It exits after ``--lifetime`` seconds (or on SIGTERM/SIGINT), so a forgotten receiver does not
linger.

``send`` (on the prefill host) fills a local buffer with N deterministic bytes (SHAKE-256 of a
per-run seed, chunk by chunk), makes one small untimed write (connection set-up), then times
``--repeat`` writes of the N bytes with ``batch_transfer_sync_write`` (in ``--block-bytes``
blocks), asks the receiver to verify the digest and prints one JSON line on stdout::

    {"ok": true, "bytes": ..., "seconds": ..., "gbps": ..., "verified": true,
     "session": "10.0.0.21:15234", "protocol": "rdma", ...}

``bytes`` is everything the timed writes moved (N x repeat) and ``gbps`` is ``bytes * 8 /
seconds / 1e9``. On any failure it prints the same kind of line with ``"ok": false`` and an
``"error"`` that names the peer and the cause, writes the error on stderr and exits 1. The whole
run is bounded: ``--wait`` seconds to reach the receiver and get its buffer, then ``--timeout``
seconds for the transfer and the verification (a watchdog ends the process if Mooncake hangs).

The module needs only the standard library and ``mooncake.engine`` (imported when used), so the
Ansible role can run it in the production SGLang image, which has Mooncake but not this package:
``python3 -c "import os; exec(compile(os.environ['PD_KVPROBE_SOURCE'], 'kvprobe.py', 'exec'))"``
with the file's text in ``PD_KVPROBE_SOURCE``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

DEFAULT_PORT = 18990
CHUNK_BYTES = 4 * 1024 * 1024
WARMUP_BYTES = 64 * 1024
PROTOCOLS = ("tcp", "rdma")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 2


class ProbeError(Exception):
    """A failure the user must act on; the message names the peer and the cause."""


def log(message: str) -> None:
    """One line on stderr."""
    print(f"kvprobe: {message}", file=sys.stderr, flush=True)


def spans(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of consecutive pieces of at most ``size`` bytes covering ``total``."""
    offset = 0
    while offset < total:
        length = min(size, total - offset)
        yield offset, length
        offset += length


def pattern(seed: str, index: int, length: int) -> bytes:
    """The deterministic bytes of chunk ``index`` of a run (SHAKE-256 of seed and index)."""
    return hashlib.shake_256(f"{seed}:{index}".encode()).digest(length)


def expected_digest(seed: str, total: int) -> str:
    """Digest of the ``total`` bytes a run with ``seed`` writes (without any buffer)."""
    h = hashlib.blake2b(digest_size=16)
    for i, (_, length) in enumerate(spans(total, CHUNK_BYTES)):
        h.update(pattern(seed, i, length))
    return h.hexdigest()


def parse_peer(text: str) -> tuple[str, int]:
    """``"10.0.0.21:18990"`` -> ``("10.0.0.21", 18990)`` (``[v6]:port`` too)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ProbeError(f"--to {text!r}: expected IP:PORT of the receiver's control port")
    return host.strip("[]"), int(port)


def topology_hcas(text: object) -> list[str]:
    """RDMA device names in Mooncake's ``get_local_topology()`` JSON (``{"cpu:0":
    [[preferred], [available]], ...}``), sorted; [] when there are none or it does not parse."""
    try:
        data = json.loads(text) if isinstance(text, str | bytes) else text
    except ValueError:
        return []
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node:
            found.add(node)

    walk(data)
    return sorted(found)


def local_address_towards(host: str, port: int) -> str:
    """The local IP address the kernel would use to reach ``host`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, port))
        except OSError as exc:
            raise ProbeError(f"no route from this host to {host}: {exc}") from None
        return sock.getsockname()[0]


class Engine:
    """A Mooncake TransferEngine with P2PHANDSHAKE (no metadata server) and one session."""

    def __init__(self, host: str, protocol: str, device: str = "") -> None:
        try:
            from mooncake.engine import TransferEngine  # late: needs libibverbs1 and friends
        except ImportError as exc:
            raise ProbeError(
                f"cannot import mooncake.engine ({exc}); run the probe in an image with the "
                "Mooncake transfer engine (pip install mooncake-transfer-engine)"
            ) from None
        if protocol not in PROTOCOLS:
            raise ProbeError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        self._te = TransferEngine()
        rc = self._te.initialize(host, "P2PHANDSHAKE", protocol, device)
        if rc != 0:
            hint = (
                "check the RDMA devices exist and are ACTIVE (ibv_devinfo), /dev/infiniband is "
                "in the container and memlock is unlimited"
                if protocol == "rdma"
                else "check the address is one of this host's"
            )
            raise ProbeError(
                f"Mooncake TransferEngine.initialize({host!r}, 'P2PHANDSHAKE', {protocol!r}, "
                f"{device!r}) returned {rc}; {hint}"
            )
        self.protocol = protocol
        self.device = device
        self.session = f"{host}:{self._te.get_rpc_port()}"
        self.hcas: list[str] | None = None
        if protocol == "rdma":
            self.hcas = self._check_rdma(host, device)

    def _check_rdma(self, host: str, device: str) -> list[str] | None:
        """The RDMA devices Mooncake found. Mooncake falls back to TCP, silently, when it finds
        none, and ignores requested devices that do not exist: both are errors here."""
        if not hasattr(self._te, "get_local_topology"):
            return None  # older Mooncake: cannot tell
        hcas = topology_hcas(self._te.get_local_topology())
        if not hcas:
            raise ProbeError(
                f"protocol rdma but Mooncake found no RDMA device on {host} (it would fall back "
                "to TCP); check /dev/infiniband is in the container, `ibv_devices` on the host "
                "and the rdma.* findings"
            )
        missing = [d for d in device.split(",") if d.strip() and d.strip() not in hcas]
        if missing:
            raise ProbeError(
                f"RDMA device(s) {', '.join(missing)} not found by Mooncake on {host} "
                f"(it found {', '.join(hcas)}); fix --device / disagg_ib_devices"
            )
        return hcas

    def allocate(self, nbytes: int) -> int:
        """A registered buffer of ``nbytes``; its address."""
        addr = self._te.allocate_managed_buffer(nbytes)
        if not addr:
            raise ProbeError(f"Mooncake could not allocate a buffer of {nbytes} bytes")
        return int(addr)

    def fill(self, addr: int, total: int, seed: str) -> str:
        """Write the run's deterministic bytes at ``addr``; their digest."""
        h = hashlib.blake2b(digest_size=16)
        for i, (offset, length) in enumerate(spans(total, CHUNK_BYTES)):
            data = pattern(seed, i, length)
            rc = self._te.write_bytes_to_buffer(addr + offset, data, length)
            if rc != 0:
                raise ProbeError(f"Mooncake write_bytes_to_buffer returned {rc}")
            h.update(data)
        return h.hexdigest()

    def digest(self, addr: int, total: int) -> str:
        """Digest of ``total`` bytes of a local buffer."""
        h = hashlib.blake2b(digest_size=16)
        for offset, length in spans(total, CHUNK_BYTES):
            h.update(bytes(self._te.read_bytes_from_buffer(addr + offset, length)))
        return h.hexdigest()

    def write(self, target: str, src: int, dst: int, total: int, block: int) -> None:
        """Push ``total`` bytes from ``src`` to the peer's ``dst`` in blocks (blocking)."""
        pieces = list(spans(total, block))
        rc = self._te.batch_transfer_sync_write(
            target,
            [src + o for o, _ in pieces],
            [dst + o for o, _ in pieces],
            [n for _, n in pieces],
        )
        if rc != 0:
            raise ProbeError(
                f"Mooncake batch_transfer_sync_write to {target} returned {rc} "
                f"({len(pieces)} blocks, {total} bytes, protocol {self.protocol})"
            )


# --------------------------------------------------------------------------- receiver


class Receiver:
    """The receiving side: one Mooncake buffer, leased to one sender at a time."""

    def __init__(self, engine: Engine, capacity: int, lease_seconds: float) -> None:
        self.engine = engine
        self.capacity = capacity
        self.addr = engine.allocate(capacity)
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._lease: dict[str, Any] | None = None
        self.transfers = 0

    def info(self) -> dict:
        """What GET /health answers."""
        return {
            "ok": True,
            "session": self.engine.session,
            "protocol": self.engine.protocol,
            "device": self.engine.device,
            "hcas": self.engine.hcas,
            "capacity": self.capacity,
            "transfers": self.transfers,
        }

    def begin(self, req: dict) -> tuple[int, dict]:
        """Lease the buffer for ``req['bytes']`` bytes."""
        try:
            nbytes = int(req.get("bytes", 0))
        except (TypeError, ValueError):
            return 400, {"error": f"bytes must be an integer, got {req.get('bytes')!r}"}
        if not 0 < nbytes <= self.capacity:
            return 413, {
                "error": f"{nbytes} bytes requested but the receiver's buffer holds "
                f"{self.capacity} (start it with a larger --buffer-bytes)"
            }
        asked = req.get("lease_seconds")
        seconds = min(float(self.lease_seconds if asked is None else asked), 3600.0)
        now = time.monotonic()
        with self._lock:
            if self._lease and self._lease["until"] > now:
                return 409, {"error": f"busy with a transfer from {self._lease['sender']}"}
            token = secrets.token_hex(8)
            self._lease = {"token": token, "sender": str(req.get("sender", "?")),
                           "until": now + seconds}
        return 200, {"token": token, "session": self.engine.session, "addr": self.addr,
                     "capacity": self.capacity, "protocol": self.engine.protocol}

    def _end(self, req: dict) -> tuple[int, dict] | None:
        with self._lock:
            if not self._lease or self._lease["token"] != req.get("token"):
                return 409, {"error": "no such lease (expired, or another sender took over)"}
            self._lease = None
        return None

    def verify(self, req: dict) -> tuple[int, dict]:
        """Digest the leased bytes, compare with the sender's digest, end the lease."""
        nbytes = int(req.get("bytes", 0))
        if not 0 < nbytes <= self.capacity:
            return 400, {"error": f"bytes {nbytes} out of range"}
        with self._lock:
            if not self._lease or self._lease["token"] != req.get("token"):
                return 409, {"error": "no such lease (expired, or another sender took over)"}
            found = self.engine.digest(self.addr, nbytes)
            self._lease = None
            self.transfers += 1
        return 200, {"verified": found == req.get("digest"), "digest": found}

    def release(self, req: dict) -> tuple[int, dict]:
        """End a lease without verifying."""
        return self._end(req) or (200, {"released": True})


def _handler(receiver: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[dict], tuple[int, dict]]] = {
        "/begin": receiver.begin,
        "/verify": receiver.verify,
        "/release": receiver.release,
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "kvprobe/1"

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/health":
                self._reply(200, receiver.info())
            else:
                self._reply(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            route = routes.get(self.path)
            if route is None:
                self._reply(404, {"error": f"no route {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(length) or b"{}")
                status, body = route(req if isinstance(req, dict) else {})
            except Exception as exc:  # noqa: BLE001 (the sender gets the cause)
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._reply(status, body)

        def log_message(self, fmt: str, *args: Any) -> None:
            log(f"{self.client_address[0]} {fmt % args}")

    return Handler


def serve(args: argparse.Namespace) -> int:
    """Run the receiver until ``--lifetime`` ends or a signal arrives."""
    engine = Engine(args.host, args.protocol, args.device)
    receiver = Receiver(engine, args.buffer_bytes, args.lease_seconds)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    try:
        server = http.server.ThreadingHTTPServer((args.host, args.port), _handler(receiver))
    except OSError as exc:
        raise ProbeError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    server.daemon_threads = True
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    devices = f" {engine.device}" if engine.device else ""
    log(f"receiver {engine.session} ({engine.protocol}{devices}, {args.buffer_bytes} bytes) on "
        f"http://{args.host}:{args.port} for {args.lifetime:g} s")
    print(json.dumps({"ready": True, **receiver.info(), "control": f"{args.host}:{args.port}"}),
          flush=True)
    stop.wait(args.lifetime)
    server.shutdown()
    log(f"receiver done after {receiver.transfers} verified transfer(s)")
    return EXIT_OK


# --------------------------------------------------------------------------- sender


#: Control requests go straight to the receiver, never through an HTTP proxy from the env.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _call(base: str, path: str, body: dict | None, timeout: float) -> tuple[int, dict]:
    """One control request; ``(status, json body)``. Raises OSError when unreachable."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "error" not in payload:
            payload = {"error": f"HTTP {exc.code} {exc.reason} (is this a kvprobe receiver?)"}
        return exc.code, payload


def _lease(base: str, peer: str, nbytes: int, sender: str, lease_seconds: float,
           wait: float) -> dict:
    """Reach the receiver and lease its buffer, retrying until ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    last = "no answer"
    while True:
        left = deadline - time.monotonic()
        try:
            status, body = _call(base, "/begin", {"bytes": nbytes, "sender": sender,
                                                  "lease_seconds": lease_seconds},
                                 timeout=max(0.5, min(5.0, left)))
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"cannot reach its control port: {reason}"
        else:
            if status == 200:
                return body
            if status != 409:
                raise ProbeError(f"receiver {peer} refused the transfer: {body.get('error')}")
            last = str(body.get("error"))
        if time.monotonic() + 0.5 > deadline:
            raise ProbeError(f"receiver {peer}: {last} (gave up after {wait:g} s)")
        time.sleep(0.5)


def send(args: argparse.Namespace, result: dict) -> int:
    """Run one probe transfer; fill ``result`` (printed by the caller)."""
    peer = args.to
    host, port = parse_peer(peer)
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    local = args.host or local_address_towards(host, port)
    result["from"] = local
    if args.bytes <= 0 or args.block_bytes <= 0 or args.repeat <= 0:
        raise ProbeError("--bytes, --block-bytes and --repeat must be positive")
    result["phase"] = "reaching the receiver's control port"
    lease = _lease(base, peer, args.bytes, local, args.timeout + 10, args.wait)
    result["session"] = lease["session"]
    if lease.get("protocol") != args.protocol:
        _call(base, "/release", {"token": lease["token"]}, timeout=5)
        raise ProbeError(f"receiver {peer} speaks {lease.get('protocol')}, this sender "
                         f"{args.protocol}: start both with the same --protocol")
    try:
        result["phase"] = "starting Mooncake"
        engine = Engine(local, args.protocol, args.device)
        result["hcas"] = engine.hcas
        src = engine.allocate(args.bytes)
        digest = engine.fill(src, args.bytes, args.seed)
        target, dst = lease["session"], int(lease["addr"])
        try:
            result["phase"] = f"the first write to Mooncake session {target} (connection set-up)"
            engine.write(target, src, dst, min(WARMUP_BYTES, args.bytes), args.block_bytes)
            seconds = 0.0
            result["phase"] = f"the timed writes to Mooncake session {target}"
            for _ in range(args.repeat):
                start = time.perf_counter()
                engine.write(target, src, dst, args.bytes, args.block_bytes)
                seconds += time.perf_counter() - start
        except ProbeError as exc:
            raise ProbeError(f"receiver {peer}: {exc}") from None
        moved = args.bytes * args.repeat
        result.update(bytes=moved, seconds=round(seconds, 9),
                      gbps=round(moved * 8 / seconds / 1e9, 3) if seconds > 0 else None,
                      block_bytes=args.block_bytes, repeat=args.repeat, digest=digest)
        result["phase"] = "the verification"
        status, body = _call(base, "/verify", {"token": lease["token"], "bytes": args.bytes,
                                               "digest": digest}, timeout=args.timeout)
    except BaseException:
        try:
            _call(base, "/release", {"token": lease["token"]}, timeout=2)
        except (OSError, ValueError):
            pass
        raise
    if status != 200:
        raise ProbeError(f"receiver {peer} could not verify: {body.get('error')}")
    result["verified"] = bool(body.get("verified"))
    if not result["verified"]:
        raise ProbeError(f"receiver {peer} ({lease['session']}) holds different bytes than were "
                         f"sent (digest {body.get('digest')}, sent {digest}): the transfer "
                         "reported success but the data is wrong")
    result["ok"] = True
    del result["phase"]
    return EXIT_OK


def _emit(result: dict) -> None:
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def run_send(args: argparse.Namespace) -> int:
    """``send`` with a watchdog and exactly one JSON line on stdout."""
    result: dict[str, Any] = {"ok": False, "to": args.to, "protocol": args.protocol,
                              "device": args.device, "bytes": 0, "seconds": None, "gbps": None,
                              "verified": False, "session": None}
    printed = threading.Lock()
    budget = args.wait + args.timeout

    def watchdog() -> None:
        if printed.acquire(blocking=False):
            result["error"] = (f"receiver {args.to}: no result within {budget:g} s (--wait "
                               f"{args.wait:g} + --timeout {args.timeout:g}); hung in "
                               f"{result.get('phase', 'start-up')}")
            _emit(result)
            log(result["error"])
            os._exit(EXIT_TIMEOUT)

    timer = threading.Timer(budget, watchdog)
    timer.daemon = True
    timer.start()
    try:
        code = send(args, result)
    except ProbeError as exc:
        result["error"] = str(exc)
        code = EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 (one JSON line, never a traceback)
        result["error"] = f"receiver {args.to}: {type(exc).__name__}: {exc}"
        code = EXIT_FAILED
    timer.cancel()
    if not printed.acquire(blocking=False):
        time.sleep(60)  # the watchdog is printing and exiting
    _emit(result)
    if code != EXIT_OK:
        log(result["error"])
    return code


# --------------------------------------------------------------------------- CLI


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def build_parser() -> argparse.ArgumentParser:
    """The command line of both sides."""
    parser = argparse.ArgumentParser(prog="kvprobe", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--protocol", choices=PROTOCOLS, default="tcp",
                       help="Mooncake transport (default tcp)")
        p.add_argument("--device", default="",
                       help="RDMA devices, comma-separated (mlx5_0,mlx5_1); '' = Mooncake picks")

    srv = sub.add_parser("serve", help="receiver: a Mooncake buffer and a control port")
    srv.add_argument("--host", required=True, help="this host's address (Mooncake and control)")
    srv.add_argument("--port", type=int, default=DEFAULT_PORT, help="control port")
    common(srv)
    srv.add_argument("--buffer-bytes", type=_size, default=64 * 1024**2,
                     help="receive buffer (largest --bytes a sender may send; 1G, 64M, ...)")
    srv.add_argument("--lifetime", type=float, default=600.0,
                     help="seconds until the receiver exits on its own")
    srv.add_argument("--lease-seconds", type=float, default=120.0,
                     help="default seconds a sender holds the buffer")

    snd = sub.add_parser("send", help="sender: write N bytes to a receiver and report bandwidth")
    snd.add_argument("--to", required=True, help="IP:PORT of the receiver's control port")
    snd.add_argument("--bytes", type=_size, default=64 * 1024**2, help="bytes per timed write")
    common(snd)
    snd.add_argument("--host", default="",
                     help="this host's address for Mooncake (default: the one routing to --to)")
    snd.add_argument("--repeat", type=int, default=3, help="timed writes (default 3)")
    snd.add_argument("--block-bytes", type=_size, default=4 * 1024**2,
                     help="bytes per Mooncake block of a write (default 4M)")
    snd.add_argument("--seed", default="", help="pattern seed (default: random per run)")
    snd.add_argument("--wait", type=float, default=30.0,
                     help="seconds to reach the receiver and lease its buffer")
    snd.add_argument("--timeout", type=float, default=60.0,
                     help="seconds for the transfers and the verification")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python3 kvprobe.py`` (the preflight role ships this file in its files/)."""
    args = build_parser().parse_args(argv)
    if args.command == "send":
        args.seed = args.seed or secrets.token_hex(8)
        return run_send(args)
    try:
        return serve(args)
    except ProbeError as exc:
        log(str(exc))
        print(json.dumps({"ready": False, "error": str(exc)}), flush=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
