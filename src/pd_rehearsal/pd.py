"""SGLang's PD disaggregation protocol (0.5.2, Mooncake backend), re-implemented for rehearsal.

Shapes follow `sglang/srt/disaggregation/mooncake/conn.py` and `common/conn.py` of 0.5.2:
- prefill runs a bootstrap HTTP server (`PUT /route` rank registration, `GET /route` with
  `engine_rank/target_dp_group/target_pp_rank`, all -1 for the parallel layout, `GET /health`);
- every prefill rank binds a ZMQ PULL socket and registers `rank_ip/rank_port` there;
- decode registers its KV buffer pointers with that socket (room "None"), then per request
  sends the room, its Mooncake session id and destination page indices;
- prefill writes the KV with Mooncake `batch_transfer_sync_write` and pushes a status
  (`KVPoll`) to decode's own PULL socket; decode then verifies the bytes (rehearsal addition).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from dataclasses import dataclass
from enum import IntEnum

import aiohttp
import numpy as np
import zmq
import zmq.asyncio
from aiohttp import web

from .kv import (
    PAGE_TOKENS,
    Mooncake,
    PagePool,
    contiguous_runs,
    digest,
    kv_bytes,
    pages_needed,
)
from .metrics import Counters

log = logging.getLogger("pd_rehearsal.pd")

FAKE_BOOTSTRAP_HOST = "2.2.2.2"  # SGLang's marker for health-check requests: no KV transfer


class KVPoll(IntEnum):
    """Transfer states, numbered as in SGLang's `disaggregation/base/conn.py`."""

    Failed = 0
    Bootstrapping = 1
    WaitingForInput = 2
    Transferring = 3
    Success = 4


class KVTransferError(Exception):
    """A KV transfer for a room failed; the message names the room and the cause."""


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def bootstrap_timeout() -> float:
    """Prefill's wait for decode's destination info (SGLang env, seconds)."""
    return _env_seconds("SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT", 300.0)


def waiting_timeout() -> float:
    """Decode's wait for the KV of a room (SGLang env, seconds)."""
    return _env_seconds("SGLANG_DISAGGREGATION_WAITING_TIMEOUT", 300.0)


# --------------------------------------------------------------------------- bootstrap server
class BootstrapServer:
    """The prefill-side bootstrap server (`--disaggregation-bootstrap-port`)."""

    def __init__(self) -> None:
        self.attn_tp_size: int | None = None
        self.dp_size: int | None = None
        self.pp_size: int | None = None
        self.table: dict[int, dict[int, dict[int, dict[str, object]]]] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/route", self._route)
        self.app.router.add_get("/health", self._health)

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _route(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            return await self._put(request)
        if request.method == "GET":
            return self._get(request)
        return web.Response(text="Method not allowed", status=405)

    async def _put(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            if self.attn_tp_size is None:
                self.attn_tp_size = int(data["attn_tp_size"])
            if self.dp_size is None:
                sys_dp = int(data["system_dp_size"])
                self.dp_size = int(data["attn_dp_size"]) if sys_dp == 1 else sys_dp
            if self.pp_size is None:
                self.pp_size = int(data["pp_size"])
            if data["role"] == "Prefill":
                sys_dp = int(data["system_dp_size"])
                group = int(data["attn_dp_rank"]) if sys_dp == 1 else int(data["system_dp_rank"])
                by_tp = self.table.setdefault(group, {})
                by_tp.setdefault(int(data["attn_tp_rank"]), {})[int(data["pp_rank"])] = {
                    "rank_ip": data["rank_ip"],
                    "rank_port": int(data["rank_port"]),
                }
        except (KeyError, ValueError, TypeError) as exc:
            return web.Response(text=f"bad registration: {exc}", status=400)
        return web.Response(text="OK")

    def _get(self, request: web.Request) -> web.Response:
        q = request.query
        keys = ("engine_rank", "target_dp_group", "target_pp_rank")
        if not all(q.get(k) for k in keys):
            return web.Response(text="Missing inputs for bootstrap server.", status=400)
        rank, group, pp = (int(q[k]) for k in keys)
        if rank == -1 and group == -1 and pp == -1:
            return web.json_response(
                {
                    "prefill_attn_tp_size": self.attn_tp_size,
                    "prefill_dp_size": self.dp_size,
                    "prefill_pp_size": self.pp_size,
                }
            )
        info = self.table.get(group, {}).get(rank, {}).get(pp)
        if info is None:
            return web.Response(text="Bootstrap info not Found", status=404)
        return web.json_response(info)


# --------------------------------------------------------------------------- shared ZMQ pieces
class _Zmq:
    """A PULL socket bound on a free port plus cached PUSH sockets to peers."""

    def __init__(self, local_ip: str) -> None:
        self.ctx = zmq.asyncio.Context.instance()
        self.pull = self.ctx.socket(zmq.PULL)
        self.port = self.pull.bind_to_random_port(f"tcp://{local_ip}")
        self._push: dict[str, zmq.asyncio.Socket] = {}

    async def send(self, ip: str, port: int, frames: list[bytes]) -> None:
        endpoint = f"tcp://{ip}:{port}"
        sock = self._push.get(endpoint)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            self._push[endpoint] = sock
        await sock.send_multipart(frames)

    def close(self) -> None:
        for sock in self._push.values():
            sock.close(0)
        self.pull.close(0)


@dataclass
class DecodeKVArgs:
    """Decode's registered KV buffer (from the room "None" message)."""

    endpoint: str
    port: int
    session: str
    base_ptrs: list[int]
    page_bytes: int


@dataclass
class TransferInfo:
    """Decode's per-room destination (from a room message)."""

    room: int
    endpoint: str
    port: int
    session: str
    pages: list[int]


# --------------------------------------------------------------------------- prefill side
class _KVSide:
    """What both PD sides hold: Mooncake, a registered page pool, a ZMQ PULL, counters."""

    def __init__(
        self,
        mooncake: Mooncake,
        local_ip: str,
        pool_bytes: int,
        bytes_per_token: int,
        seed: int,
        counters: Counters,
        log_requests: bool,
    ) -> None:
        self.mc = mooncake
        self.local_ip = local_ip
        self.bytes_per_token = bytes_per_token
        self.page_bytes = bytes_per_token * PAGE_TOKENS
        self.seed = seed
        self.counters = counters
        # one line per KV transfer: INFO with --log-requests, else DEBUG
        self.request_log_level = logging.INFO if log_requests else logging.DEBUG
        self.buffer = mooncake.allocate(pool_bytes, self.page_bytes)
        self.pool = PagePool(self.buffer.num_pages)
        self.zmq = _Zmq(local_ip)


class PrefillKVManager(_KVSide):
    """Prefill side: receives decode's destinations, writes KV through Mooncake."""

    def __init__(
        self,
        mooncake: Mooncake,
        local_ip: str,
        pool_bytes: int,
        bytes_per_token: int,
        seed: int,
        counters: Counters,
        corrupt: bool = False,
        log_requests: bool = False,
    ) -> None:
        super().__init__(
            mooncake, local_ip, pool_bytes, bytes_per_token, seed, counters, log_requests
        )
        self.corrupt = corrupt
        self.decode_args: dict[str, DecodeKVArgs] = {}
        self._rooms: dict[int, asyncio.Future[TransferInfo]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def rank_port(self) -> int:
        """The ZMQ port decode pushes its destinations to."""
        return self.zmq.port

    def start(self) -> None:
        """Start receiving decode messages."""
        self._task = asyncio.get_running_loop().create_task(self._recv_loop())

    def _room_future(self, room: int) -> asyncio.Future[TransferInfo]:
        fut = self._rooms.get(room)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._rooms[room] = fut
        return fut

    async def _recv_loop(self) -> None:
        while True:
            frames = await self.zmq.pull.recv_multipart()
            try:
                self._on_message(frames)
            except Exception:  # a bad peer message must not kill the receiver
                log.exception("prefill: dropped malformed decode message")

    def _on_message(self, frames: list[bytes]) -> None:
        room = frames[0].decode("ascii")
        session = frames[3].decode("ascii")
        if room == "None":
            ptrs = list(struct.unpack(f"{len(frames[4]) // 8}Q", frames[4]))
            self.decode_args[session] = DecodeKVArgs(
                endpoint=frames[1].decode("ascii"),
                port=int(frames[2]),
                session=session,
                base_ptrs=ptrs,
                page_bytes=int(frames[8]),
            )
            log.debug("prefill: registered KV args of decode session %s", session)
            return
        info = TransferInfo(
            room=int(room),
            endpoint=frames[1].decode("ascii"),
            port=int(frames[2]),
            session=session,
            pages=np.frombuffer(frames[4], dtype=np.int32).tolist(),
        )
        fut = self._room_future(info.room)
        if not fut.done():
            fut.set_result(info)

    async def wait_for_decode(self, room: int, timeout: float) -> TransferInfo:
        """Wait until decode has told us where the room's KV goes (Bootstrapping)."""
        fut = self._room_future(room)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            raise KVTransferError(
                f"room {room}: no decode destination arrived within {timeout:.0f}s "
                "(SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT); is the decode server reachable "
                f"from this prefill and pointed at this bootstrap port?"
            ) from None
        finally:
            if fut.done():
                self._rooms.pop(room, None)

    def forget(self, room: int) -> None:
        """Drop state of a room whose request ended early."""
        fut = self._rooms.pop(room, None)
        if fut is not None and not fut.done():
            fut.cancel()

    async def send_kv(self, info: TransferInfo, token_ids: list[int]) -> int:
        """Write the room's KV into decode's pages and report the outcome; returns bytes."""
        try:
            sent = await self._write(info, token_ids)
        except Exception as exc:
            self.counters.inc("kv_transfer_failures")
            await self._status(info, KVPoll.Failed, f"prefill could not write KV: {exc}")
            raise
        self.counters.inc("kv_bytes_sent", sent)
        self.counters.inc("kv_transfers_sent")
        await self._status(info, KVPoll.Success, "")
        log.log(
            self.request_log_level,
            "room %d: wrote %d KV bytes (%d pages) into decode session %s via Mooncake",
            info.room,
            sent,
            len(info.pages),
            info.session,
        )
        return sent

    async def _write(self, info: TransferInfo, token_ids: list[int]) -> int:
        args = self.decode_args.get(info.session)
        if args is None:
            raise KVTransferError(
                f"room {info.room}: decode session {info.session} never registered its KV buffers"
            )
        if args.page_bytes != self.page_bytes:
            raise KVTransferError(
                f"room {info.room}: decode page size {args.page_bytes} B != prefill page size "
                f"{self.page_bytes} B: prefill and decode disagree on the model's KV layout"
            )
        data = kv_bytes(token_ids, self.bytes_per_token, self.seed)
        need = pages_needed(len(token_ids), self.page_bytes, self.bytes_per_token)
        if len(info.pages) != need:
            raise KVTransferError(
                f"room {info.room}: decode offered {len(info.pages)} pages, KV needs {need}"
            )
        if self.corrupt:  # test hook: decode must notice and fail the request
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        src_pages = await self.pool.alloc(need)
        try:
            return await asyncio.to_thread(self._copy_and_push, args, info, src_pages, data)
        finally:
            await self.pool.free(src_pages)

    def _copy_and_push(
        self, args: DecodeKVArgs, info: TransferInfo, src_pages: list[int], data: bytes
    ) -> int:
        pb = self.page_bytes
        src, dst, lens = [], [], []
        for i, (s, d) in enumerate(zip(src_pages, info.pages, strict=True)):
            chunk = data[i * pb : (i + 1) * pb]
            self.mc.write_local(self.buffer.addr(s), chunk)
            src.append(self.buffer.addr(s))
            dst.append(args.base_ptrs[0] + d * pb)
            lens.append(len(chunk))
        self.mc.write_remote(args.session, src, dst, lens)
        return len(data)

    async def _status(self, info: TransferInfo, status: KVPoll, reason: str) -> None:
        frames = [str(info.room).encode(), str(int(status)).encode(), b"0", reason.encode()]
        await self.zmq.send(info.endpoint, info.port, frames)

    def close(self) -> None:
        """Stop the receiver and close sockets."""
        if self._task:
            self._task.cancel()
        self.zmq.close()


# --------------------------------------------------------------------------- decode side
@dataclass
class PrefillRank:
    """Where a prefill instance's rank 0 listens, from its bootstrap server."""

    rank_ip: str
    rank_port: int
    dp_size: int


@dataclass
class KVReceipt:
    """KV pages held by decode for a request (freed when the request ends)."""

    pages: list[int]
    nbytes: int


class DecodeKVManager(_KVSide):
    """Decode side: offers destination pages, waits for prefill's write, verifies the bytes."""

    def __init__(
        self,
        mooncake: Mooncake,
        local_ip: str,
        pool_bytes: int,
        bytes_per_token: int,
        seed: int,
        counters: Counters,
        default_bootstrap_port: int,
        log_requests: bool = False,
    ) -> None:
        super().__init__(
            mooncake, local_ip, pool_bytes, bytes_per_token, seed, counters, log_requests
        )
        self.default_bootstrap_port = default_bootstrap_port
        self._prefill: dict[str, PrefillRank] = {}
        self._misses: dict[str, int] = {}
        self._room_addr: dict[int, str] = {}
        self._registered: set[str] = set()
        self._waiting: dict[int, asyncio.Future[tuple[int, str]]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start receiving prefill status messages and heartbeating known prefills."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._recv_loop())
        self._watcher = loop.create_task(self._watch_prefills())

    async def _recv_loop(self) -> None:
        while True:
            frames = await self.zmq.pull.recv_multipart()
            try:
                room, status = int(frames[0]), int(frames[1])
                reason = frames[3].decode() if len(frames) > 3 else ""
            except (ValueError, IndexError):
                log.error("decode: dropped malformed prefill status %r", frames[:3])
                continue
            fut = self._waiting.get(room)
            if fut is not None and not fut.done():
                fut.set_result((status, reason))

    async def _prefill_rank(self, addr: str, room: int, deadline: float) -> PrefillRank:
        cached = self._prefill.get(addr)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        last = "no answer"
        while loop.time() < deadline:
            try:
                rank = await self._fetch_rank(addr, room)
                self._prefill[addr] = rank
                self._misses[addr] = 0
                return rank
            except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5)
        raise KVTransferError(
            f"room {room}: prefill bootstrap server http://{addr} gave no route ({last}); "
            "check --disaggregation-bootstrap-port on prefill and the router's --prefill entry"
        )

    async def _fetch_rank(self, addr: str, room: int) -> PrefillRank:
        layout = await self._get_json(
            f"http://{addr}/route?engine_rank=-1&target_dp_group=-1&target_pp_rank=-1"
        )
        dp = int(layout["prefill_dp_size"] or 1)
        info = await self._get_json(
            f"http://{addr}/route?engine_rank=0&target_dp_group={room % dp}&target_pp_rank=0"
        )
        return PrefillRank(str(info["rank_ip"]), int(info["rank_port"]), dp)

    async def _watch_prefills(self) -> None:
        """Heartbeat every known prefill's bootstrap server (SGLang's decode does the same).

        A prefill that restarted comes back with a new rank port and Mooncake session: the
        cached route is dropped and rooms waiting on the old one fail at once (the router
        retries them) instead of hanging until SGLANG_DISAGGREGATION_WAITING_TIMEOUT.
        """
        interval = _env_seconds("SGLANG_DISAGGREGATION_HEARTBEAT_INTERVAL", 1.0)
        max_misses = int(_env_seconds("SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", 2))
        while True:
            await asyncio.sleep(interval)
            for addr, old in list(self._prefill.items()):
                try:
                    new = await self._fetch_rank(addr, 0)
                except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:
                    self._misses[addr] = self._misses.get(addr, 0) + 1
                    if self._misses[addr] >= max_misses:
                        self._drop(addr, f"its bootstrap server stopped answering ({exc!r})")
                    continue
                self._misses[addr] = 0
                if (new.rank_ip, new.rank_port) != (old.rank_ip, old.rank_port):
                    self._drop(
                        addr,
                        f"it restarted (rank {old.rank_ip}:{old.rank_port} -> "
                        f"{new.rank_ip}:{new.rank_port})",
                    )

    def _drop(self, addr: str, why: str) -> None:
        rank = self._prefill.pop(addr, None)
        self._misses.pop(addr, None)
        if rank is None:
            return
        self._registered.discard(f"{rank.rank_ip}:{rank.rank_port}")
        log.warning("decode: forgetting prefill %s: %s", addr, why)
        for room, room_addr in list(self._room_addr.items()):
            fut = self._waiting.get(room)
            if room_addr == addr and fut is not None and not fut.done():
                fut.set_result((int(KVPoll.Failed), f"prefill {addr} is gone: {why}"))

    async def _get_json(self, url: str) -> dict:
        assert self._http is not None
        async with self._http.get(url) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=await resp.text()
                )
            return await resp.json()

    async def receive(
        self, room: int, host: str | None, port: int | None, token_ids: list[int]
    ) -> KVReceipt:
        """Get the room's KV from prefill into our pages and verify it; raises KVTransferError."""
        loop = asyncio.get_running_loop()
        timeout = waiting_timeout()
        deadline = loop.time() + timeout
        addr = f"{host}:{port or self.default_bootstrap_port}"
        rank = await self._prefill_rank(addr, room, deadline)
        endpoint = f"{rank.rank_ip}:{rank.rank_port}"
        if endpoint not in self._registered:
            await self.zmq.send(rank.rank_ip, rank.rank_port, self._kv_args_frames())
            self._registered.add(endpoint)
        need = pages_needed(len(token_ids), self.page_bytes, self.bytes_per_token)
        pages = await self.pool.alloc(need)
        fut: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._waiting[room] = fut
        self._room_addr[room] = addr
        try:
            await self.zmq.send(rank.rank_ip, rank.rank_port, self._room_frames(room, pages))
            remaining = max(0.1, deadline - loop.time())
            try:
                status, reason = await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                raise KVTransferError(
                    f"room {room}: KV from prefill {addr} did not arrive within {timeout:.0f}s "
                    "(SGLANG_DISAGGREGATION_WAITING_TIMEOUT)"
                ) from None
            if status != KVPoll.Success:
                raise KVTransferError(
                    f"room {room}: prefill {addr} reported KV transfer failed"
                    + (f": {reason}" if reason else " (it might be dead)")
                )
            nbytes = len(token_ids) * self.bytes_per_token
            await asyncio.to_thread(self._verify, room, addr, pages, token_ids, nbytes)
        except BaseException:
            await self.pool.free(pages)
            raise
        finally:
            self._waiting.pop(room, None)
            self._room_addr.pop(room, None)
        self.counters.inc("kv_bytes_received", nbytes)
        self.counters.inc("kv_transfers_received")
        log.log(
            self.request_log_level,
            "room %d: received %d KV bytes from prefill %s (rank %s), checksum verified",
            room,
            nbytes,
            addr,
            endpoint,
        )
        return KVReceipt(pages=pages, nbytes=nbytes)

    def _verify(
        self, room: int, addr: str, pages: list[int], token_ids: list[int], nbytes: int
    ) -> None:
        got = bytearray()
        for start, count in contiguous_runs(pages):
            want = min(count * self.page_bytes, nbytes - len(got))
            got += self.mc.read_local(self.buffer.addr(start), want)
        expected = kv_bytes(token_ids, self.bytes_per_token, self.seed)
        if bytes(got) != expected:
            self.counters.inc("kv_verify_failures")
            raise KVTransferError(
                f"room {room}: KV cache received from prefill {addr} failed verification "
                f"(checksum {digest(bytes(got))} != expected {digest(expected)}, {nbytes} bytes); "
                "refusing to decode from a corrupt KV cache"
            )

    def _kv_args_frames(self) -> list[bytes]:
        return [
            b"None",
            self.local_ip.encode(),
            str(self.zmq.port).encode(),
            self.mc.session_id.encode(),
            struct.pack("Q", self.buffer.base),
            b"",
            b"0",
            b"1",
            str(self.page_bytes).encode(),
        ]

    def _room_frames(self, room: int, pages: list[int]) -> list[bytes]:
        return [
            str(room).encode(),
            self.local_ip.encode(),
            str(self.zmq.port).encode(),
            self.mc.session_id.encode(),
            np.asarray(pages, dtype=np.int32).tobytes(),
            b"0",
            b"1",
        ]

    async def release(self, receipt: KVReceipt) -> None:
        """Free a request's KV pages."""
        await self.pool.free(receipt.pages)

    async def close(self) -> None:
        """Stop the receiver, close sockets and the HTTP session."""
        for task in (self._task, self._watcher):
            if task:
                task.cancel()
        if self._http:
            await self._http.close()
        self.zmq.close()
