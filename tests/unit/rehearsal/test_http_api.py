"""The engine's HTTP API in-process (mode null and PD-mode request checks), SGLang's shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pd_rehearsal.http_api import HttpApi
from pd_rehearsal.model import load_model
from pd_rehearsal.server import Engine
from pd_rehearsal.server_args import parse_args
from tests.conftest import free_port


async def _engine(model_dir: Path, *flags: str) -> tuple[Engine, str]:
    port = free_port()
    args = parse_args(["--model-path", str(model_dir), "--host", "127.0.0.1", "--port",
                       str(port), "--served-model-name", "tiny", *flags])
    engine = Engine(args, load_model(args.model_path, args.served_model_name, 0))
    return engine, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server(model_dir: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    engine, url = await _engine(model_dir, "--rehearsal-startup-seconds", "0",
                                "--rehearsal-decode-ms-per-token", "1")
    await engine.start()
    async with aiohttp.ClientSession() as http:
        yield http, url
    await engine.stop()


async def _sse(resp: aiohttp.ClientResponse) -> list[dict | str]:
    events: list[dict | str] = []
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            payload = line[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_health_is_503_while_starting_then_200(model_dir: Path) -> None:
    engine, url = await _engine(model_dir, "--rehearsal-startup-seconds", "1")
    starting = asyncio.create_task(engine.start())
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(50):  # the HTTP server comes up before the "model" is loaded
                try:
                    async with http.get(f"{url}/health") as r:
                        assert r.status == 503
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("HTTP server never came up")
            await starting
            async with http.get(f"{url}/health") as r:
                assert r.status == 200
            async with http.get(f"{url}/health_generate") as r:
                assert r.status == 200
    finally:
        await engine.stop()


async def test_never_ready_hook_keeps_health_503(model_dir: Path) -> None:
    engine, url = await _engine(model_dir, "--rehearsal-never-ready")
    await engine.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as r:
            assert r.status == 503
    finally:
        await engine.stop()


async def test_info_endpoints_look_like_sglang_and_say_rehearsal(server) -> None:
    http, url = server
    for path in ("/get_server_info", "/server_info"):
        async with http.get(url + path) as r:
            info = await r.json()
        assert info["rehearsal"] is True and "NOT inference" in info["rehearsal_note"]
        assert info["tp_size"] == 1 and info["disaggregation_mode"] == "null"
        assert "kv_bytes_received" in info["counters"]
    for path in ("/get_model_info", "/model_info"):
        async with http.get(url + path) as r:
            assert (await r.json())["is_generation"] is True
    async with http.get(f"{url}/v1/models") as r:
        card = (await r.json())["data"][0]
    assert card["id"] == "tiny" and card["owned_by"] == "sglang"
    async with http.get(f"{url}/version") as r:
        assert r.status == 404  # a worker answering /version is taken for vLLM by smg
    async with http.post(f"{url}/flush_cache") as r:
        assert r.status == 200


async def test_generate_non_stream_is_deterministic_and_counts_tokens(server) -> None:
    http, url = server
    body = {"text": "bada kefo lumi", "sampling_params": {"max_new_tokens": 12,
                                                          "ignore_eos": True}}
    async with http.post(f"{url}/generate", json=body) as r:
        first = await r.json()
    async with http.post(f"{url}/generate", json=body) as r:
        second = await r.json()
    assert first["text"] == second["text"] and first["text"]
    meta = first["meta_info"]
    assert meta["prompt_tokens"] == 3 and meta["completion_tokens"] == 12
    assert meta["finish_reason"] == {"type": "length", "length": 12}
    async with http.post(f"{url}/generate", json={**body, "text": "soko"}) as r:
        assert (await r.json())["text"] != first["text"]


async def test_generate_without_ignore_eos_stops_with_eos(server) -> None:
    http, url = server
    body = {"input_ids": [5, 6, 7], "sampling_params": {"max_new_tokens": 500}}
    async with http.post(f"{url}/generate", json=body) as r:
        meta = (await r.json())["meta_info"]
    assert meta["finish_reason"]["type"] == "stop"
    assert meta["completion_tokens"] < 500


async def test_generate_stream_is_cumulative_like_sglang(server) -> None:
    http, url = server
    body = {"text": "bada", "stream": True,
            "sampling_params": {"max_new_tokens": 5, "ignore_eos": True}}
    async with http.post(f"{url}/generate", json=body) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = await _sse(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert [c["meta_info"]["completion_tokens"] for c in chunks] == [1, 2, 3, 4, 5]
    assert all(chunks[i + 1]["text"].startswith(chunks[i]["text"]) for i in range(4))
    async with http.post(f"{url}/generate", json={**body, "stream": False}) as r:
        assert (await r.json())["text"] == chunks[-1]["text"]


async def test_batch_generate_returns_one_result_per_prompt(server) -> None:
    http, url = server
    body = {"text": ["bada", "kefo lumi"], "sampling_params": {"max_new_tokens": 3,
                                                               "ignore_eos": True}}
    async with http.post(f"{url}/generate", json=body) as r:
        results = await r.json()
    assert [x["meta_info"]["prompt_tokens"] for x in results] == [1, 2]


async def test_openai_completions_and_chat(server) -> None:
    http, url = server
    async with http.post(f"{url}/v1/completions", json={"model": "tiny", "prompt": "bada",
                                                        "max_tokens": 4,
                                                        "ignore_eos": True}) as r:
        out = await r.json()
    assert out["object"] == "text_completion" and out["usage"]["completion_tokens"] == 4
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4,
            "ignore_eos": True}
    async with http.post(f"{url}/v1/chat/completions", json=chat) as r:
        out = await r.json()
    assert out["choices"][0]["message"]["role"] == "assistant"
    text = out["choices"][0]["message"]["content"]
    async with http.post(f"{url}/v1/chat/completions",
                         json={**chat, "stream": True,
                               "stream_options": {"include_usage": True}}) as r:
        events = await _sse(r)
    deltas = [e["choices"][0]["delta"] for e in events[:-1] if e["choices"]]
    assert deltas[0]["role"] == "assistant" and "role" not in deltas[1]
    assert "".join(d["content"] for d in deltas) == text
    assert events[-2]["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/generate", {"sampling_params": {}}, 400, "Either text or input_ids"),
        ("/generate", {"text": "a", "input_ids": [1]}, 400, "Either text or input_ids"),
        ("/generate", {"input_ids": [1, 999999]}, 400, "out of vocabulary"),
        ("/generate", {"text": "a", "sampling_params": {"max_new_tokens": -1}}, 400,
         "max_new_tokens"),
        ("/generate", {"text": "a", "sampling_params": {"max_new_tokens": 10**6}}, 400,
         "maximum context length"),
        ("/generate", {"text": "a", "bootstrap_room": "x"}, 400, "bootstrap_room"),
        ("/v1/chat/completions", {"model": "m"}, 400, "messages is required"),
    ],
)
async def test_bad_requests_get_clear_400s(server, path, body, status, needle) -> None:
    http, url = server
    async with http.post(url + path, json=body) as r:
        assert r.status == status
        assert needle in await r.text()


async def test_invalid_json_is_a_400(server) -> None:
    http, url = server
    async with http.post(f"{url}/generate", data=b"{nope") as r:
        assert r.status == 400 and "not valid JSON" in await r.text()


async def test_metrics_are_prometheus_text(server) -> None:
    http, url = server
    async with http.post(f"{url}/generate", json={"text": "bada", "sampling_params": {
            "max_new_tokens": 2, "ignore_eos": True}}) as r:
        assert r.status == 200
    async with http.get(f"{url}/metrics") as r:
        text = await r.text()
    assert "# TYPE sglang:generation_tokens_total counter" in text
    assert 'sglang:num_requests_total{engine="rehearsal",mode="null",model_name="tiny"}' in text
    assert "sglang:kv_bytes_received_total" in text


async def test_pd_worker_rejects_requests_without_a_room(model_dir: Path) -> None:
    engine, url = await _engine(model_dir, "--disaggregation-mode", "decode",
                                "--disaggregation-transfer-backend", "fake",
                                "--rehearsal-startup-seconds", "0")
    await engine.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/generate", json={"text": "bada"}) as r:
                assert r.status == 400
                assert "bootstrap_room" in (await r.json())["error"]["message"]
            async with http.get(f"{url}/health") as r:
                assert r.status == 200  # health uses SGLang's fake bootstrap host, no transfer
    finally:
        await engine.stop()


async def test_busy_server_is_healthy_while_its_queue_is_full(model_dir: Path, monkeypatch) -> None:
    """A probe queued behind a full batch must not fail health: progress is proof of life."""
    import pd_rehearsal.server as server_mod

    monkeypatch.setattr(server_mod, "HEALTH_CHECK_TIMEOUT", 1.0)
    engine, url = await _engine(model_dir, "--rehearsal-startup-seconds", "0",
                                "--max-running-requests", "1",
                                "--rehearsal-decode-ms-per-token", "20")
    await engine.start()
    try:
        async with aiohttp.ClientSession() as http:
            long = asyncio.create_task(http.post(f"{url}/generate", json={
                "text": "bada", "sampling_params": {"max_new_tokens": 150, "ignore_eos": True}}))
            await asyncio.sleep(0.2)  # the only running slot is taken for ~3 s (> the timeout)
            async with http.get(f"{url}/health") as r:
                assert r.status == 200
            async with await long as r:
                assert (await r.json())["meta_info"]["completion_tokens"] == 150
    finally:
        await engine.stop()


async def test_http_api_serves_sglang_routes_over_an_engine(model_dir: Path) -> None:
    """The HTTP layer is its own module: its app has SGLang's routes, the engine none."""
    engine, _ = await _engine(model_dir)
    routes = {(r.method, r.resource.canonical) for r in HttpApi(engine).app().router.routes()
              if r.resource is not None and r.method != "HEAD"}
    assert {path for _, path in routes} == {
        "/health", "/health_generate", "/get_server_info", "/server_info", "/get_model_info",
        "/model_info", "/get_load", "/v1/models", "/generate", "/v1/completions",
        "/v1/chat/completions", "/flush_cache", "/metrics"}
    assert ("PUT", "/generate") in routes and ("*", "/flush_cache") in routes
    assert not hasattr(engine, "app") and not hasattr(engine, "chat_completions")


async def test_get_load_and_batch_room_count(server) -> None:
    http, url = server
    async with http.get(f"{url}/get_load") as r:
        assert await r.json() == [{"dp_rank": 0, "num_reqs": 0, "num_waiting_reqs": 0,
                                   "num_tokens": 0}]
    body = {"text": ["bada", "kefo"], "bootstrap_room": [1]}
    async with http.post(f"{url}/generate", json=body) as r:
        assert r.status == 400
        assert (await r.json())["error"]["message"] == (
            "bootstrap_room has 1 entries for a batch of 2")


async def test_openai_errors_and_stream_without_usage(server) -> None:
    http, url = server
    async with http.post(f"{url}/v1/completions", json={"prompt": ["a", "b"]}) as r:
        err = await r.json()
    assert r.status == 400 and err["object"] == "error" and err["type"] == "BadRequestError"
    assert err["code"] == 400 and "one prompt per completion" in err["message"]
    body = {"prompt": "bada", "stream": True, "max_tokens": 3, "ignore_eos": True}
    async with http.post(f"{url}/v1/completions", json=body) as r:
        events = await _sse(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all("usage" not in c and c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("cmpl-")
