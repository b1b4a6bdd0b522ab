"""The rehearsal engine's HTTP server: SGLang 0.5.2's API shape over the stand-in runner.

Endpoints: /health and /health_generate (503 while starting), /get_server_info and
/server_info, /get_model_info and /model_info, /get_load, /v1/models, /generate,
/v1/completions, /v1/chat/completions, /flush_cache, /metrics. There is deliberately no
/version: SGLang has none, and routers that see one take the worker for vLLM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from . import __version__
from .follower import Rendezvous
from .kv import Mooncake
from .metrics import Counters
from .model import RehearsalModel
from .pd import (
    FAKE_BOOTSTRAP_HOST,
    BootstrapServer,
    DecodeKVManager,
    KVReceipt,
    KVTransferError,
    PrefillKVManager,
    bootstrap_timeout,
)
from .runner import GenRequest, Runner

log = logging.getLogger("pd_rehearsal")

ENGINE_NAME = "inferops.disagg rehearsal engine"
ENGINE_NOTE = (
    "Stands in for SGLang's GPU model runner on CPU: real HTTP/PD/Mooncake data path, "
    "deterministic text, NOT inference."
)
HEALTH_CHECK_TIMEOUT = 20.0


class RequestError(Exception):
    """A client error (HTTP 400) with a message for the caller."""


@dataclass
class Room:
    """PD fields the router adds to a request."""

    host: str | None
    port: int | None
    room: int | None

    @property
    def fake(self) -> bool:
        """True for SGLang's health-check marker: no KV transfer."""
        return self.host == FAKE_BOOTSTRAP_HOST


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
            return s.getsockname()[0]
    except OSError:
        return socket.gethostbyname(socket.gethostname())


class Engine:
    """One rehearsal engine instance (HTTP + runner + PD side for its mode)."""

    def __init__(self, args: argparse.Namespace, model: RehearsalModel) -> None:
        self.args = args
        self.model = model
        self.mode = args.disaggregation_mode
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
        await self._serve(self.app(), self.args.host, self.args.port)
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
        self.mooncake = await asyncio.to_thread(Mooncake, self.local_ip, metadata, "tcp")
        pool = self.args.rehearsal_kv_pool_mb << 20
        bpt, seed = self.model.kv_bytes_per_token, self.model.seed
        log.info(
            "Mooncake transfer engine up: session %s, metadata %s, protocol tcp, KV pool %d MiB",
            self.mooncake.session_id,
            metadata,
            self.args.rehearsal_kv_pool_mb,
        )
        if self.mode == "prefill":
            self.prefill_kv = PrefillKVManager(
                self.mooncake,
                self.local_ip,
                pool,
                bpt,
                seed,
                self.counters,
                self.args.rehearsal_fail_kv_checksum,
                self.args.log_requests,
            )
            self.prefill_kv.start()
            self.bootstrap = BootstrapServer()
            port = self.args.disaggregation_bootstrap_port
            await self._serve(self.bootstrap.app, self.args.host, port)
            await self._register_ranks(port)
            log.info("bootstrap server on %s:%d", self.args.host, port)
        else:
            self.decode_kv = DecodeKVManager(
                self.mooncake,
                self.local_ip,
                pool,
                bpt,
                seed,
                self.counters,
                self.args.disaggregation_bootstrap_port,
                self.args.log_requests,
            )
            self.decode_kv.start()

    async def _register_ranks(self, port: int) -> None:
        """PUT every rank of this instance to our own bootstrap server, as SGLang ranks do."""
        import aiohttp

        assert self.prefill_kv is not None
        dp = max(1, self.args.dp_size)
        attn_tp = self.args.tp_size // dp if self.args.enable_dp_attention else self.args.tp_size
        wildcard = self.args.host in ("0.0.0.0", "::", "")
        url = f"http://{'127.0.0.1' if wildcard else self.local_ip}:{port}/route"
        async with aiohttp.ClientSession() as http:
            for dp_rank in range(dp if self.args.enable_dp_attention else 1):
                for tp_rank in range(attn_tp):
                    payload = {
                        "role": "Prefill",
                        "attn_tp_size": attn_tp,
                        "attn_tp_rank": tp_rank,
                        "attn_dp_size": dp if self.args.enable_dp_attention else 1,
                        "attn_dp_rank": dp_rank,
                        "pp_size": self.args.pp_size,
                        "pp_rank": 0,
                        "system_dp_size": 1 if self.args.enable_dp_attention else dp,
                        "system_dp_rank": 0,
                        "rank_ip": self.local_ip,
                        "rank_port": self.prefill_kv.rank_port,
                    }
                    async with http.put(url, json=payload) as resp:
                        if resp.status != 200:
                            raise SystemExit(f"error: bootstrap registration failed: {resp.status}")
            if not self.args.enable_dp_attention:
                # system DP: every DP group of this one process answers at the same rank port
                for group in range(1, dp):
                    self.bootstrap.table[group] = self.bootstrap.table[0]  # type: ignore[union-attr]

    async def _warmup(self) -> None:
        req = GenRequest(rid="warmup", input_ids=[3, 4, 5], max_new_tokens=1)
        await self._generate(req, Room(FAKE_BOOTSTRAP_HOST, None, 0)).__anext__()

    async def stop(self) -> None:
        """Shut everything down."""
        await self.runner.stop()
        if self.prefill_kv:
            self.prefill_kv.close()
        if self.decode_kv:
            await self.decode_kv.close()
        for runner in self._runners:
            await runner.cleanup()

    # ------------------------------------------------------------------ core generation
    async def _generate(self, req: GenRequest, room: Room) -> AsyncIterator[GenRequest]:
        """Run one request in this engine's mode; yields the request after every new token."""
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
                if not room.fake and self.decode_kv is not None:
                    receipt = await self.decode_kv.receive(
                        room.room,
                        room.host,
                        room.port,
                        req.input_ids,  # type: ignore[arg-type]
                    )
            else:
                await self.runner.prefill(req)
            async for _ in self.runner.decode(req):
                yield req
            self.counters.inc("num_requests")
        finally:
            if receipt is not None and self.decode_kv is not None:
                await self.decode_kv.release(receipt)

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

    # ------------------------------------------------------------------ HTTP
    def app(self) -> web.Application:
        """The aiohttp application with SGLang's routes."""
        app = web.Application(client_max_size=256 << 20)
        r = app.router
        r.add_get("/health", self.health)
        r.add_get("/health_generate", self.health)
        for path in ("/get_server_info", "/server_info"):
            r.add_get(path, self.server_info)
        for path in ("/get_model_info", "/model_info"):
            r.add_get(path, self.model_info)
        r.add_get("/get_load", self.get_load)
        r.add_get("/v1/models", self.models)
        r.add_route("POST", "/generate", self.generate)
        r.add_route("PUT", "/generate", self.generate)
        r.add_post("/v1/completions", self.completions)
        r.add_post("/v1/chat/completions", self.chat_completions)
        r.add_route("*", "/flush_cache", self.flush_cache)
        r.add_get("/metrics", self.metrics)
        return app

    async def health(self, _: web.Request) -> web.Response:
        """503 while starting; then healthy once the runner makes progress within 20 s.

        As SGLang's ``health_generate``: a 1-token probe request is queued, and any batch step
        finishing after the check began counts as proof of life, so a busy server answers as
        soon as its next step completes instead of waiting behind a long queue.
        """
        if not self.ready:
            return web.Response(status=503)
        tic = time.time()
        req = GenRequest(rid=f"HEALTH_CHECK_{tic}", input_ids=[3], max_new_tokens=1)
        probe = asyncio.ensure_future(
            self._generate(req, Room(FAKE_BOOTSTRAP_HOST, None, 0)).__anext__()
        )
        try:
            while time.time() < tic + HEALTH_CHECK_TIMEOUT:
                if probe.done() or self.runner.last_step > tic:
                    return web.Response(status=200)
                await asyncio.sleep(0.01)
        finally:
            probe.cancel()
        log.error("Health check failed: no progress within %.0fs", HEALTH_CHECK_TIMEOUT)
        return web.Response(status=503)

    async def server_info(self, _: web.Request) -> web.Response:
        """Server args, runtime state and the rehearsal engine's identity and KV counters."""
        info = {k: v for k, v in vars(self.args).items() if _jsonable(v)}
        info.update(
            {
                "version": "0.5.2",
                "engine": ENGINE_NAME,
                "engine_version": __version__,
                "rehearsal": True,
                "rehearsal_note": ENGINE_NOTE,
                "status": "ready" if self.ready else "starting",
                "kv_bytes_per_token": self.model.kv_bytes_per_token,
                "mooncake_session_id": self.mooncake.session_id if self.mooncake else None,
                "local_ip": self.local_ip,
                "counters": self.counters.snapshot(),
                "internal_states": [{"load": self.runner.load}],
            }
        )
        return web.json_response(info)

    async def model_info(self, _: web.Request) -> web.Response:
        """SGLang's /get_model_info."""
        return web.json_response(
            {
                "model_path": self.model.path,
                "tokenizer_path": self.args.tokenizer_path or self.model.path,
                "is_generation": True,
                "preferred_sampling_params": None,
                "weight_version": "default",
            }
        )

    async def get_load(self, _: web.Request) -> web.Response:
        """SGLang's /get_load (one entry per DP rank; here one)."""
        return web.json_response([{"dp_rank": 0, **self.runner.load}])

    async def models(self, _: web.Request) -> web.Response:
        """OpenAI /v1/models with owned_by "sglang", as SGLang answers."""
        name = self.model.served_name
        card = {
            "id": name,
            "object": "model",
            "created": int(self.started_at),
            "owned_by": "sglang",
            "root": name,
            "max_model_len": self.model.context_length,
        }
        return web.json_response({"object": "list", "data": [card]})

    async def flush_cache(self, _: web.Request) -> web.Response:
        """Nothing is cached across requests in rehearsal; answers as SGLang does."""
        return web.Response(text="Cache flushed.\nPlease check backend logs for more details. ")

    async def metrics(self, _: web.Request) -> web.Response:
        """Prometheus text: SGLang-style counters plus KV transfer counters."""
        labels = {"model_name": self.model.served_name, "mode": self.mode, "engine": "rehearsal"}
        return web.Response(
            text=self.counters.prometheus(labels), content_type="text/plain", charset="utf-8"
        )

    # ------------------------------------------------------------------ /generate
    async def generate(self, request: web.Request) -> web.StreamResponse:
        """SGLang's native /generate (single or batch, stream or not)."""
        try:
            body = await _json_body(request)
            reqs = self._native_requests(body)
        except RequestError as exc:
            return _error(400, str(exc))
        if isinstance(reqs, list):
            return await self._generate_batch(reqs)
        req, room = reqs
        if body.get("stream"):
            return await self._stream(request, req, room, self._native_chunk)
        return await self._complete(req, room, lambda r: self._native_result(r))

    def _native_requests(
        self, body: dict
    ) -> tuple[GenRequest, Room] | list[tuple[GenRequest, Room]]:
        params = body.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise RequestError("sampling_params must be an object")
        text, ids = body.get("text"), body.get("input_ids")
        if (text is None) == (ids is None):
            raise RequestError("Either text or input_ids should be provided.")
        prompts = text if text is not None else ids
        batch = isinstance(prompts, list) and (text is not None or _is_batch_ids(prompts))
        rooms = _rooms(body, len(prompts) if batch else None)
        items = prompts if batch else [prompts]
        out = [
            (
                self._request(p, params.get("max_new_tokens", 128), params, body.get("rid")),
                rooms[i],
            )
            for i, p in enumerate(items)
        ]
        return out if batch else out[0]

    def _request(
        self, prompt: str | list[int], max_new: object, params: dict, rid: object = None
    ) -> GenRequest:
        ids = (
            self.model.encode(prompt)
            if isinstance(prompt, str)
            else _check_ids(prompt, self.model.vocab_size)
        )
        if not ids:
            raise RequestError("The input is empty: at least one token is needed.")
        if max_new is None:
            max_new = 128
        if not isinstance(max_new, int) or max_new < 0:
            raise RequestError(f"max_new_tokens must be a non-negative integer, got {max_new!r}")
        if len(ids) + max_new > self.model.context_length:
            raise RequestError(
                f"Requested token count exceeds the model's maximum context length of "
                f"{self.model.context_length} tokens. You requested a total of "
                f"{len(ids) + max_new} tokens: {len(ids)} tokens from the input messages and "
                f"{max_new} tokens for the completion."
            )
        temp = params.get("temperature", 1.0)
        if temp is not None and (not isinstance(temp, int | float) or temp < 0):
            raise RequestError(f"temperature must be a non-negative number, got {temp!r}")
        return GenRequest(
            rid=str(rid) if rid else uuid.uuid4().hex,
            input_ids=ids,
            max_new_tokens=max_new,
            ignore_eos=bool(params.get("ignore_eos", False)),
        )

    def _meta(self, req: GenRequest) -> dict:
        return {
            "id": req.rid,
            "finish_reason": req.finish_reason,
            "prompt_tokens": len(req.input_ids),
            "completion_tokens": len(req.output_ids),
            "cached_tokens": 0,
            "e2e_latency": time.perf_counter() - req.created,
            "engine": "rehearsal",
        }

    def _native_result(self, req: GenRequest) -> dict:
        return {"text": req.text, "output_ids": list(req.output_ids), "meta_info": self._meta(req)}

    def _native_chunk(self, req: GenRequest, _: int) -> dict:
        return self._native_result(req)

    async def _run(self, req: GenRequest, room: Room) -> GenRequest:
        async for _ in self._generate(req, room):
            pass
        return req

    async def _complete(
        self, req: GenRequest, room: Room, render: Callable[[GenRequest], dict]
    ) -> web.Response:
        try:
            await self._run(req, room)
        except RequestError as exc:
            return _error(400, str(exc))
        except KVTransferError as exc:
            return self._kv_error(req, exc)
        return web.json_response(render(req))

    async def _generate_batch(self, reqs: list[tuple[GenRequest, Room]]) -> web.Response:
        results = await asyncio.gather(
            *(self._run(r, room) for r, room in reqs), return_exceptions=True
        )
        for res in results:
            if isinstance(res, RequestError):
                return _error(400, str(res))
            if isinstance(res, KVTransferError):
                return self._kv_error(reqs[0][0], res)
            if isinstance(res, BaseException):
                raise res
        return web.json_response([self._native_result(r) for r in results])  # type: ignore[arg-type]

    def _kv_error(self, req: GenRequest, exc: Exception) -> web.Response:
        self.counters.inc("num_aborted_requests")
        log.error("request %s aborted: %s", req.rid, exc)
        return _error(500, f"KV transfer failed ({self.mode}): {exc}")

    async def _stream(
        self,
        request: web.Request,
        req: GenRequest,
        room: Room,
        chunk: Callable[[GenRequest, int], dict],
        final: Callable[[GenRequest], list[dict]] | None = None,
    ) -> web.StreamResponse:
        """Server-sent events: one `data:` line per emitted chunk, then `data: [DONE]`."""
        gen = self._generate(req, room)
        try:
            first = await gen.__anext__()  # errors before the first token become HTTP errors
        except RequestError as exc:
            return _error(400, str(exc))
        except KVTransferError as exc:
            return self._kv_error(req, exc)
        except StopAsyncIteration:
            first = req
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        interval = max(1, int(getattr(self.args, "stream_interval", 1) or 1))
        sent = 0
        await _sse(resp, chunk(first, sent))
        sent = len(first.output_ids)
        async for r in gen:
            if len(r.output_ids) - sent >= interval or r.finish_reason is not None:
                await _sse(resp, chunk(r, sent))
                sent = len(r.output_ids)
        for extra in final(req) if final else []:
            await _sse(resp, extra)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------------ OpenAI
    async def completions(self, request: web.Request) -> web.StreamResponse:
        """OpenAI /v1/completions."""
        return await self._openai(request, chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """OpenAI /v1/chat/completions (the model directory's chat template, rendered simply)."""
        return await self._openai(request, chat=True)

    async def _openai(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            prompt = _chat_prompt(body) if chat else body.get("prompt")
            if prompt is None or (isinstance(prompt, list) and not prompt):
                raise RequestError("prompt is required" if not chat else "messages is required")
            if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
                if len(prompt) != 1:
                    raise RequestError("the rehearsal engine takes one prompt per completion")
                prompt = prompt[0]
            max_new = body.get("max_completion_tokens") or body.get("max_tokens")
            if max_new is None:
                max_new = 16 if not chat else 128
            req = self._request(prompt, max_new, body, body.get("rid"))
            room = _rooms(body, None)[0]
        except RequestError as exc:
            return _openai_error(400, str(exc))
        oid = ("chatcmpl-" if chat else "cmpl-") + req.rid
        created = int(time.time())
        model = body.get("model") or self.model.served_name

        def usage(r: GenRequest) -> dict:
            p, c = len(r.input_ids), len(r.output_ids)
            return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

        def finish(r: GenRequest) -> str | None:
            return None if r.finish_reason is None else r.finish_reason["type"]

        if body.get("stream"):

            def chunk(r: GenRequest, sent: int) -> dict:
                delta_text = _delta(r, sent)
                choice: dict = {"index": 0, "finish_reason": finish(r), "logprobs": None}
                if chat:
                    choice["delta"] = {"content": delta_text}
                    if sent == 0:
                        choice["delta"]["role"] = "assistant"
                else:
                    choice["text"] = delta_text
                return {
                    "id": oid,
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                }

            def final(r: GenRequest) -> list[dict]:
                opts = body.get("stream_options") or {}
                if not opts.get("include_usage"):
                    return []
                return [
                    {
                        "id": oid,
                        "object": "chat.completion.chunk" if chat else "text_completion",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage(r),
                    }
                ]

            return await self._stream(request, req, room, chunk, final)

        def render(r: GenRequest) -> dict:
            choice: dict = {"index": 0, "finish_reason": finish(r), "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": r.text}
            else:
                choice["text"] = r.text
            return {
                "id": oid,
                "object": "chat.completion" if chat else "text_completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage(r),
            }

        try:
            await self._run(req, room)
        except RequestError as exc:
            return _openai_error(400, str(exc))
        except KVTransferError as exc:
            self._kv_error(req, exc)
            return _openai_error(500, f"KV transfer failed ({self.mode}): {exc}")
        return web.json_response(render(req))


# ---------------------------------------------------------------------- helpers
def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    return body


def _is_batch_ids(ids: list) -> bool:
    return bool(ids) and isinstance(ids[0], list)


def _check_ids(ids: object, vocab: int) -> list[int]:
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise RequestError("input_ids must be a list of integers")
    bad = [i for i in ids if i < 0 or i >= vocab]
    if bad:
        raise RequestError(f"input_ids out of vocabulary range [0, {vocab}): {bad[:5]}")
    return list(ids)


def _rooms(body: dict, n: int | None) -> list[Room]:
    host, port, room = (
        body.get("bootstrap_host"),
        body.get("bootstrap_port"),
        body.get("bootstrap_room"),
    )
    if n is None:
        return [Room(host, _opt_int(port, "bootstrap_port"), _opt_int(room, "bootstrap_room"))]

    def pick(v: object, i: int) -> object:
        return v[i] if isinstance(v, list) else v

    if isinstance(room, list) and len(room) != n:
        raise RequestError(f"bootstrap_room has {len(room)} entries for a batch of {n}")
    return [
        Room(
            pick(host, i),
            _opt_int(pick(port, i), "bootstrap_port"),  # type: ignore[arg-type]
            _opt_int(pick(room, i), "bootstrap_room"),
        )
        for i in range(n)
    ]


def _opt_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be an integer, got {value!r}")
    return value


def _chat_prompt(body: dict) -> str | None:
    messages = body.get("messages")
    if messages is None:
        return None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RequestError("messages must be a list of objects")
    parts = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):
            content = " ".join(c.get("text", "") for c in content if isinstance(c, dict))
        parts.append(f"<s> {m.get('role', 'user')} : {content} </s>")
    return " ".join(parts) + " <s> assistant :"


def _delta(req: GenRequest, sent: int) -> str:
    return "".join(req.pieces[sent:]) if sent < len(req.pieces) else ""


async def _sse(resp: web.StreamResponse, data: dict) -> None:
    await resp.write(b"data: " + json.dumps(data).encode() + b"\n\n")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


def _openai_error(status: int, message: str) -> web.Response:
    kind = "BadRequestError" if status == 400 else "InternalServerError"
    return web.json_response(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        status=status,
    )
