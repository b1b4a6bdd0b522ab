"""The rehearsal engine: its lifecycle (start, loading, PD managers, shutdown) and generation.

``Engine`` serves HTTP at once (``/health`` 503 while starting), joins the other nodes of a
multi-node instance, sets up its PD side (Mooncake, the prefill bootstrap server and KV
managers), warms up and becomes ready. The HTTP / OpenAI-compatible API over it lives in
``http_api``; this module is what the API calls: ``generate``, ``run`` and ``healthy``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator

from aiohttp import web

from . import ENGINE_NAME, ENGINE_NOTE, __version__
from .follower import Rendezvous
from .http_api import HttpApi
from .kv import Mooncake
from .metrics import Counters
from .model import RehearsalModel
from .pd import (
    FAKE_BOOTSTRAP_HOST,
    BootstrapServer,
    DecodeKVManager,
    KVReceipt,
    PrefillKVManager,
    bootstrap_timeout,
)
from .request import RequestError, Room
from .runner import GenRequest, Runner

__all__ = [
    "ENGINE_NAME",
    "ENGINE_NOTE",
    "HEALTH_CHECK_TIMEOUT",
    "Engine",
    "RequestError",
    "Room",
    "local_ip",
]

log = logging.getLogger("pd_rehearsal")

HEALTH_CHECK_TIMEOUT = 20.0


def local_ip(bind_host: str) -> str:
    """The address peers use to reach this engine (as SGLang's get_local_ip_auto)."""
    for env in ("SGLANG_HOST_IP", "HOST_IP"):
        if os.environ.get(env):
            return os.environ[env]
    if bind_host not in ("0.0.0.0", "::", ""):
        return socket.gethostbyname(bind_host)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            address: str = s.getsockname()[0]
            return address
    except OSError:
        return socket.gethostbyname(socket.gethostname())


class Engine:
    """One rehearsal engine instance (HTTP + runner + PD side for its mode)."""

    def __init__(self, args: argparse.Namespace, model: RehearsalModel) -> None:
        self.args = args
        self.model = model
        self.mode: str = args.disaggregation_mode
        self.counters = Counters()
        self.runner = Runner(
            model,
            self.counters,
            args.rehearsal_prefill_ms_per_1k_tokens,
            args.rehearsal_decode_ms_per_token,
            args.chunked_prefill_size,
            args.max_running_requests,
        )
        self.ready = False
        self.started_at = time.time()
        self.local_ip = local_ip(args.host)
        self.mooncake: Mooncake | None = None
        self.prefill_kv: PrefillKVManager | None = None
        self.decode_kv: DecodeKVManager | None = None
        self.bootstrap: BootstrapServer | None = None
        self._runners: list[web.AppRunner] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Serve HTTP at once (503 while starting), set up PD, then become ready."""
        log.info("%s %s. %s", ENGINE_NAME, __version__, ENGINE_NOTE)
        log.info(
            "mode=%s model=%s tp=%s dp=%s kv_bytes_per_token=%d local_ip=%s",
            self.mode,
            self.model.path,
            self.args.tp_size,
            self.args.dp_size,
            self.model.kv_bytes_per_token,
            self.local_ip,
        )
        await self._serve(HttpApi(self).app(), self.args.host, self.args.port)
        self.runner.start()
        if self.args.nnodes > 1:
            rendezvous = Rendezvous(self.args.nnodes)
            await rendezvous.serve(self.args.dist_init_addr)
            await rendezvous.complete.wait()
        if self.mode != "null":
            await self._start_pd()
        if self.args.rehearsal_never_ready:
            log.warning("--rehearsal-never-ready: /health will stay 503 (test hook)")
            return
        await asyncio.sleep(self.args.rehearsal_startup_seconds)
        await self._warmup()
        self.ready = True
        log.info("The server is fired up and ready to roll!")

    async def _serve(self, app: web.Application, host: str, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host=host, port=port, backlog=4096).start()
        self._runners.append(runner)

    async def _start_pd(self) -> None:
        backend = self.args.disaggregation_transfer_backend
        if backend not in ("mooncake", "fake"):
            raise SystemExit(
                f"error: the rehearsal engine implements --disaggregation-transfer-backend "
                f"mooncake (and fake), not {backend!r}"
            )
        if backend == "fake":
            log.warning("transfer backend 'fake': no KV moves (SGLang's fake backend)")
            return
        metadata = os.environ.get("PD_REHEARSAL_MOONCAKE_METADATA", "P2PHANDSHAKE")
        mooncake = await asyncio.to_thread(Mooncake, self.local_ip, metadata, "tcp")
        self.mooncake = mooncake
        log.info(
            "Mooncake transfer engine up: session %s, metadata %s, protocol tcp, KV pool %d MiB",
            mooncake.session_id,
            metadata,
            self.args.rehearsal_kv_pool_mb,
        )
        ib_device = getattr(self.args, "disaggregation_ib_device", None)
        gid_index = os.environ.get("MC_GID_INDEX")
        if ib_device or gid_index:
            log.info(
                "RDMA settings received: --disaggregation-ib-device %s, MC_GID_INDEX %s; not used:"
                " the rehearsal engine moves KV over TCP",
                ib_device or "(none)",
                gid_index if gid_index is not None else "(unset)",
            )
        if self.mode == "prefill":
            await self._start_prefill(mooncake)
        else:
            self._start_decode(mooncake)

    async def _start_prefill(self, mooncake: Mooncake) -> None:
        """The prefill KV manager and the bootstrap server, with every rank registered."""
        prefill_kv = PrefillKVManager(
            mooncake,
            self.local_ip,
            self.args.rehearsal_kv_pool_mb << 20,
            self.model.kv_bytes_per_token,
            self.model.seed,
            self.counters,
            self.args.rehearsal_fail_kv_checksum,
            self.args.log_requests,
        )
        prefill_kv.start()
        self.prefill_kv = prefill_kv
        bootstrap = BootstrapServer()
        self.bootstrap = bootstrap
        port = self.args.disaggregation_bootstrap_port
        await self._serve(bootstrap.app, self.args.host, port)
        await self._register_ranks(bootstrap, prefill_kv.rank_port, port)
        log.info("bootstrap server on %s:%d", self.args.host, port)

    def _start_decode(self, mooncake: Mooncake) -> None:
        """The decode KV manager (it finds prefill ranks through their bootstrap servers)."""
        decode_kv = DecodeKVManager(
            mooncake,
            self.local_ip,
            self.args.rehearsal_kv_pool_mb << 20,
            self.model.kv_bytes_per_token,
            self.model.seed,
            self.counters,
            self.args.disaggregation_bootstrap_port,
            self.args.log_requests,
        )
        decode_kv.start()
        self.decode_kv = decode_kv

    async def _register_ranks(self, bootstrap: BootstrapServer, rank_port: int, port: int) -> None:
        """PUT every rank of this instance to our own bootstrap server, as SGLang ranks do."""
        import aiohttp

        wildcard = self.args.host in ("0.0.0.0", "::", "")
        url = f"http://{'127.0.0.1' if wildcard else self.local_ip}:{port}/route"
        async with aiohttp.ClientSession() as http:
            for payload in self._rank_payloads(rank_port):
                async with http.put(url, json=payload) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"error: bootstrap registration failed: {resp.status}")
        if not self.args.enable_dp_attention:
            # system DP: every DP group of this one process answers at the same rank port
            for group in range(1, max(1, self.args.dp_size)):
                bootstrap.table[group] = bootstrap.table[0]

    def _rank_payloads(self, rank_port: int) -> list[dict[str, object]]:
        """SGLang's ``PUT /route`` registration of every (attention DP, TP) rank."""
        dp = max(1, self.args.dp_size)
        dp_attention = bool(self.args.enable_dp_attention)
        attn_tp = self.args.tp_size // dp if dp_attention else self.args.tp_size
        return [
            {
                "role": "Prefill",
                "attn_tp_size": attn_tp,
                "attn_tp_rank": tp_rank,
                "attn_dp_size": dp if dp_attention else 1,
                "attn_dp_rank": dp_rank,
                "pp_size": self.args.pp_size,
                "pp_rank": 0,
                "system_dp_size": 1 if dp_attention else dp,
                "system_dp_rank": 0,
                "rank_ip": self.local_ip,
                "rank_port": rank_port,
            }
            for dp_rank in range(dp if dp_attention else 1)
            for tp_rank in range(attn_tp)
        ]

    async def _warmup(self) -> None:
        req = GenRequest(rid="warmup", input_ids=[3, 4, 5], max_new_tokens=1)
        await self.generate(req, Room(FAKE_BOOTSTRAP_HOST, None, 0)).__anext__()

    async def stop(self) -> None:
        """Shut everything down."""
        await self.runner.stop()
        if self.prefill_kv:
            self.prefill_kv.close()
        if self.decode_kv:
            await self.decode_kv.close()
        for runner in self._runners:
            await runner.cleanup()

    async def healthy(self) -> bool:
        """False while starting; then True once the runner makes progress within 20 s.

        As SGLang's ``health_generate``: a 1-token probe request is queued, and any batch step
        finishing after the check began counts as proof of life, so a busy server answers as
        soon as its next step completes instead of waiting behind a long queue.
        """
        if not self.ready:
            return False
        tic = time.time()
        req = GenRequest(rid=f"HEALTH_CHECK_{tic}", input_ids=[3], max_new_tokens=1)
        probe = asyncio.ensure_future(
            self.generate(req, Room(FAKE_BOOTSTRAP_HOST, None, 0)).__anext__()
        )
        try:
            while time.time() < tic + HEALTH_CHECK_TIMEOUT:
                if probe.done() or self.runner.last_step > tic:
                    return True
                await asyncio.sleep(0.01)
        finally:
            probe.cancel()
        log.error("Health check failed: no progress within %.0fs", HEALTH_CHECK_TIMEOUT)
        return False

    # ------------------------------------------------------------------ generation
    async def generate(self, req: GenRequest, room: Room) -> AsyncIterator[GenRequest]:
        """Run one request in this engine's mode; yields the request after every new token.

        Raises ``RequestError`` for a PD-mode request without a room and ``KVTransferError``
        when its KV does not arrive intact.
        """
        if self.mode != "null" and room.room is None and not room.fake:
            raise RequestError(
                f"{self.mode} server in PD mode needs bootstrap_host/bootstrap_port/bootstrap_room "
                "(send requests through the PD router, not to a worker directly)"
            )
        if self.mode == "prefill":
            await self._prefill_side(req, room)
            req.output_ids = self.runner.plan(req)[:1]
            req.pieces = [self.model.decode(req.output_ids)]
            req.finish_reason = {"type": "length", "length": 1}
            yield req
            return
        receipt: KVReceipt | None = None
        try:
            if self.mode == "decode":
                receipt = await self._decode_side(req, room)
            else:
                await self.runner.prefill(req)
            async for _token in self.runner.decode(req):
                yield req
            self.counters.inc("num_requests")
        finally:
            if receipt is not None and self.decode_kv is not None:
                await self.decode_kv.release(receipt)

    async def run(self, req: GenRequest, room: Room) -> GenRequest:
        """Run one request to its end and return it (its output filled in)."""
        async for _step in self.generate(req, room):
            pass
        return req

    async def _prefill_side(self, req: GenRequest, room: Room) -> None:
        if room.fake or self.prefill_kv is None:
            await self.runner.prefill(req)
            return
        assert room.room is not None
        try:
            info = await self.prefill_kv.wait_for_decode(room.room, bootstrap_timeout())
        except BaseException:
            self.prefill_kv.forget(room.room)
            raise
        await self.runner.prefill(req)
        await self.prefill_kv.send_kv(info, req.input_ids)
        self.counters.inc("num_requests")

    async def _decode_side(self, req: GenRequest, room: Room) -> KVReceipt | None:
        """Receive and verify the request's KV from prefill (none for the health marker)."""
        if room.fake or self.decode_kv is None:
            return None
        assert room.room is not None  # generate() rejects PD requests without one
        return await self.decode_kv.receive(room.room, room.host, room.port, req.input_ids)
