"""The rehearsal engine's HTTP server: SGLang 0.5.2's API shape over the stand-in runner.

Endpoints: /health and /health_generate (503 while starting), /get_server_info and
/server_info, /get_model_info and /model_info, /get_load, /v1/models, /generate,
/v1/completions, /v1/chat/completions, /flush_cache, /metrics. There is deliberately no
/version: SGLang has none, and routers that see one take the worker for vLLM.

This module turns HTTP bodies into ``GenRequest`` + ``Room`` and engine results into SGLang's
and OpenAI's response shapes (JSON or server-sent events); the engine itself (``server``) does
the lifecycle and generation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import ENGINE_NAME, ENGINE_NOTE, __version__
from .model import RehearsalModel
from .pd import KVTransferError
from .request import RequestError, Room
from .runner import GenRequest

if TYPE_CHECKING:
    from .server import Engine

log = logging.getLogger("pd_rehearsal")

Json = dict[str, Any]
Chunk = Callable[[GenRequest, int], Json]
Final = Callable[[GenRequest], list[Json]]


class HttpApi:
    """SGLang's HTTP API (native and OpenAI-compatible) over one ``Engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def model(self) -> RehearsalModel:
        """The engine's rehearsal model (tokenizer, served name, context length)."""
        return self.engine.model

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

    # ------------------------------------------------------------------ info endpoints
    async def health(self, _: web.Request) -> web.Response:
        """503 while starting; then 200 once the runner makes progress (``Engine.healthy``)."""
        return web.Response(status=200 if await self.engine.healthy() else 503)

    async def server_info(self, _: web.Request) -> web.Response:
        """Server args, runtime state and the rehearsal engine's identity and KV counters."""
        engine = self.engine
        info = {k: v for k, v in vars(engine.args).items() if _jsonable(v)}
        info.update(
            {
                "version": "0.5.2",
                "engine": ENGINE_NAME,
                "engine_version": __version__,
                "rehearsal": True,
                "rehearsal_note": ENGINE_NOTE,
                "status": "ready" if engine.ready else "starting",
                "kv_bytes_per_token": self.model.kv_bytes_per_token,
                "mooncake_session_id": engine.mooncake.session_id if engine.mooncake else None,
                "local_ip": engine.local_ip,
                "counters": engine.counters.snapshot(),
                "internal_states": [{"load": engine.runner.load}],
            }
        )
        return web.json_response(info)

    async def model_info(self, _: web.Request) -> web.Response:
        """SGLang's /get_model_info."""
        return web.json_response(
            {
                "model_path": self.model.path,
                "tokenizer_path": self.engine.args.tokenizer_path or self.model.path,
                "is_generation": True,
                "preferred_sampling_params": None,
                "weight_version": "default",
            }
        )

    async def get_load(self, _: web.Request) -> web.Response:
        """SGLang's /get_load (one entry per DP rank; here one)."""
        return web.json_response([{"dp_rank": 0, **self.engine.runner.load}])

    async def models(self, _: web.Request) -> web.Response:
        """OpenAI /v1/models with owned_by "sglang", as SGLang answers."""
        name = self.model.served_name
        card = {
            "id": name,
            "object": "model",
            "created": int(self.engine.started_at),
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
        labels = {
            "model_name": self.model.served_name,
            "mode": self.engine.mode,
            "engine": "rehearsal",
        }
        return web.Response(
            text=self.engine.counters.prometheus(labels),
            content_type="text/plain",
            charset="utf-8",
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
        return await self._complete(req, room)

    def _native_requests(
        self, body: Json
    ) -> tuple[GenRequest, Room] | list[tuple[GenRequest, Room]]:
        """One (request, room) per prompt: a list for a batch body, else a single pair."""
        params = body.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise RequestError("sampling_params must be an object")
        prompts, batch = _native_prompts(body)
        rooms = _rooms(body, len(prompts) if batch else None)
        max_new = params.get("max_new_tokens", 128)
        out = [
            (self._request(p, max_new, params, body.get("rid")), rooms[i])
            for i, p in enumerate(prompts)
        ]
        return out if batch else out[0]

    def _request(self, prompt: object, max_new: object, params: Json, rid: object) -> GenRequest:
        """A checked ``GenRequest``: text or token ids, the token budget and temperature."""
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

    def _native_chunk(self, req: GenRequest, _: int) -> Json:
        return _native_result(req)

    async def _complete(self, req: GenRequest, room: Room) -> web.Response:
        try:
            await self.engine.run(req, room)
        except RequestError as exc:
            return _error(400, str(exc))
        except KVTransferError as exc:
            return self._kv_error(req, exc)
        return web.json_response(_native_result(req))

    async def _generate_batch(self, reqs: list[tuple[GenRequest, Room]]) -> web.Response:
        results = await asyncio.gather(
            *(self.engine.run(r, room) for r, room in reqs), return_exceptions=True
        )
        done: list[GenRequest] = []
        for res in results:
            if isinstance(res, RequestError):
                return _error(400, str(res))
            if isinstance(res, KVTransferError):
                return self._kv_error(reqs[0][0], res)
            if isinstance(res, BaseException):
                raise res
            done.append(res)
        return web.json_response([_native_result(r) for r in done])

    def _kv_error(self, req: GenRequest, exc: Exception) -> web.Response:
        """Count and log an aborted request; SGLang's 500 body for the native API."""
        self.engine.counters.inc("num_aborted_requests")
        log.error("request %s aborted: %s", req.rid, exc)
        return _error(500, f"KV transfer failed ({self.engine.mode}): {exc}")

    async def _stream(
        self,
        request: web.Request,
        req: GenRequest,
        room: Room,
        chunk: Chunk,
        final: Final | None = None,
    ) -> web.StreamResponse:
        """Server-sent events: one `data:` line per emitted chunk, then `data: [DONE]`."""
        gen = self.engine.generate(req, room)
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
        interval = max(1, int(getattr(self.engine.args, "stream_interval", 1) or 1))
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
            req, room = self._openai_request(body, chat)
        except RequestError as exc:
            return _openai_error(400, str(exc))
        reply = _OpenAIReply.for_request(body, req, chat, self.model.served_name)
        if body.get("stream"):
            return await self._stream(request, req, room, reply.chunk, reply.final)
        try:
            await self.engine.run(req, room)
        except RequestError as exc:
            return _openai_error(400, str(exc))
        except KVTransferError as exc:
            self._kv_error(req, exc)
            return _openai_error(500, f"KV transfer failed ({self.engine.mode}): {exc}")
        return web.json_response(reply.render(req))

    def _openai_request(self, body: Json, chat: bool) -> tuple[GenRequest, Room]:
        """The request and room of an OpenAI body: one prompt (text or token ids)."""
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
        return self._request(prompt, max_new, body, body.get("rid")), _rooms(body, None)[0]


@dataclass(frozen=True)
class _OpenAIReply:
    """OpenAI response shapes of one (chat) completion: whole, streamed chunks, usage chunk."""

    oid: str
    created: int
    model: str
    chat: bool
    stream_options: Any  # read only when streaming, as SGLang does

    @classmethod
    def for_request(cls, body: Json, req: GenRequest, chat: bool, served: str) -> _OpenAIReply:
        """Shapes for ``req`` (its id, the time now, the model the client named or ours)."""
        return cls(
            oid=("chatcmpl-" if chat else "cmpl-") + req.rid,
            created=int(time.time()),
            model=body.get("model") or served,
            chat=chat,
            stream_options=body.get("stream_options"),
        )

    def _envelope(self, obj: str, choices: list[Json]) -> Json:
        return {
            "id": self.oid,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    @property
    def _chunk_object(self) -> str:
        return "chat.completion.chunk" if self.chat else "text_completion"

    def chunk(self, r: GenRequest, sent: int) -> Json:
        """One streamed chunk: the text since ``sent`` tokens (role on the first chat delta)."""
        delta_text = _delta(r, sent)
        choice: Json = {"index": 0, "finish_reason": _finish(r), "logprobs": None}
        if self.chat:
            choice["delta"] = {"content": delta_text}
            if sent == 0:
                choice["delta"]["role"] = "assistant"
        else:
            choice["text"] = delta_text
        return self._envelope(self._chunk_object, [choice])

    def final(self, r: GenRequest) -> list[Json]:
        """The usage chunk after the last one, if ``stream_options.include_usage`` asked."""
        opts = self.stream_options or {}
        if not opts.get("include_usage"):
            return []
        return [{**self._envelope(self._chunk_object, []), "usage": _usage(r)}]

    def render(self, r: GenRequest) -> Json:
        """The whole (non-streamed) completion."""
        choice: Json = {"index": 0, "finish_reason": _finish(r), "logprobs": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": r.text}
        else:
            choice["text"] = r.text
        obj = "chat.completion" if self.chat else "text_completion"
        return {**self._envelope(obj, [choice]), "usage": _usage(r)}


# ---------------------------------------------------------------------- helpers
def _meta(req: GenRequest) -> Json:
    return {
        "id": req.rid,
        "finish_reason": req.finish_reason,
        "prompt_tokens": len(req.input_ids),
        "completion_tokens": len(req.output_ids),
        "cached_tokens": 0,
        "e2e_latency": time.perf_counter() - req.created,
        "engine": "rehearsal",
    }


def _native_result(req: GenRequest) -> Json:
    return {"text": req.text, "output_ids": list(req.output_ids), "meta_info": _meta(req)}


def _usage(r: GenRequest) -> Json:
    p, c = len(r.input_ids), len(r.output_ids)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _finish(r: GenRequest) -> str | None:
    return None if r.finish_reason is None else r.finish_reason["type"]


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


async def _json_body(request: web.Request) -> Json:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    return body


def _native_prompts(body: Json) -> tuple[list[object], bool]:
    """A native body's prompts (``text`` or ``input_ids``) and whether it is a batch."""
    text, ids = body.get("text"), body.get("input_ids")
    if (text is None) == (ids is None):
        raise RequestError("Either text or input_ids should be provided.")
    prompts: object = text if text is not None else ids
    if isinstance(prompts, list) and (text is not None or _is_batch_ids(prompts)):
        return list(prompts), True
    return [prompts], False


def _is_batch_ids(ids: list[object]) -> bool:
    return bool(ids) and isinstance(ids[0], list)


def _check_ids(ids: object, vocab: int) -> list[int]:
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise RequestError("input_ids must be a list of integers")
    bad = [i for i in ids if i < 0 or i >= vocab]
    if bad:
        raise RequestError(f"input_ids out of vocabulary range [0, {vocab}): {bad[:5]}")
    return list(ids)


def _rooms(body: Json, n: int | None) -> list[Room]:
    """The PD room of each request: one for a single body (``n`` None), else ``n``."""
    host, port, room = (
        body.get("bootstrap_host"),
        body.get("bootstrap_port"),
        body.get("bootstrap_room"),
    )
    if n is None:
        return [_room(host, port, room)]

    def pick(v: object, i: int) -> object:
        return v[i] if isinstance(v, list) else v

    if isinstance(room, list) and len(room) != n:
        raise RequestError(f"bootstrap_room has {len(room)} entries for a batch of {n}")
    return [_room(pick(host, i), pick(port, i), pick(room, i)) for i in range(n)]


def _room(host: object, port: object, room: object) -> Room:
    return Room(
        None if host is None else str(host),
        _opt_int(port, "bootstrap_port"),
        _opt_int(room, "bootstrap_room"),
    )


def _opt_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be an integer, got {value!r}")
    return value


def _chat_prompt(body: Json) -> str | None:
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


async def _sse(resp: web.StreamResponse, data: Json) -> None:
    await resp.write(b"data: " + json.dumps(data).encode() + b"\n\n")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


def _openai_error(status: int, message: str) -> web.Response:
    kind = "BadRequestError" if status == 400 else "InternalServerError"
    return web.json_response(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        status=status,
    )
