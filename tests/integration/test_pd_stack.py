"""Integration: prefill + decode rehearsal engines behind the real sglang-router (PD mode).

Real pieces: the Rust `sglang-router` 0.3.2 from PyPI, the Mooncake transfer engine (TCP,
P2PHANDSHAKE) in both engines, SGLang's bootstrap protocol. Only the model runner is a stand-in.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import engine_argv, free_port, wait_http

pytestmark = pytest.mark.integration


def _router_argv(port: int, prefills: list[tuple[str, int]], decodes: list[str],
                 *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "sglang_router.launch_router", "--pd-disaggregation",
            "--host", "127.0.0.1", "--port", str(port), "--prometheus-port", str(free_port()),
            "--worker-startup-timeout-secs", "60", "--worker-startup-check-interval", "1",
            "--log-level", "warn"]
    for url, boot in prefills:
        argv += ["--prefill", url, str(boot)]
    for url in decodes:
        argv += ["--decode", url]
    return argv + list(extra)


def _stack(procs, model_dir: Path, *prefill_flags: str, router_flags: tuple[str, ...] = ()):
    p_port, d_port, boot, r_port = free_port(), free_port(), free_port(), free_port()
    prefill = procs("prefill", engine_argv(
        model_dir, p_port, "--disaggregation-mode", "prefill",
        "--disaggregation-bootstrap-port", str(boot), *prefill_flags))
    decode = procs("decode", engine_argv(model_dir, d_port, "--disaggregation-mode", "decode",
                                         "--rehearsal-decode-ms-per-token", "2"))
    wait_http(f"http://127.0.0.1:{p_port}/health", prefill)
    wait_http(f"http://127.0.0.1:{d_port}/health", decode)
    router = procs("router", _router_argv(r_port, [(f"http://127.0.0.1:{p_port}", boot)],
                                          [f"http://127.0.0.1:{d_port}"], *router_flags))
    wait_http(f"http://127.0.0.1:{r_port}/readiness", router)
    return f"http://127.0.0.1:{r_port}", f"http://127.0.0.1:{p_port}", \
        f"http://127.0.0.1:{d_port}", (prefill, decode, router)


def _counters(url: str) -> dict:
    return requests.get(f"{url}/get_server_info", timeout=5).json()["counters"]


def _sse(resp: requests.Response) -> list:
    out = []
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            payload = line[6:].decode()
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_requests_flow_router_prefill_mooncake_decode(procs, model_dir: Path) -> None:
    router, prefill, decode, _ = _stack(procs, model_dir)
    workers = requests.get(f"{router}/workers", timeout=5).json()["workers"]
    assert sorted((w["worker_type"], w["is_healthy"]) for w in workers) == [
        ("decode", True), ("prefill", True)]

    body = {"text": "bada kefo lumi soko", "sampling_params": {"max_new_tokens": 16,
                                                               "ignore_eos": True}}
    r = requests.post(f"{router}/generate", json=body, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["meta_info"]["completion_tokens"] == 16 and answer["text"]

    stream = _sse(requests.post(f"{router}/generate", json={**body, "stream": True},
                                timeout=30, stream=True))
    assert stream[-1] == "[DONE]" and stream[-2]["text"] == answer["text"]

    chat = {"model": "rehearsal-tiny", "max_tokens": 8, "ignore_eos": True,
            "messages": [{"role": "user", "content": "bada kefo"}]}
    r = requests.post(f"{router}/v1/chat/completions", json=chat, timeout=30)
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    assert content
    chunks = _sse(requests.post(f"{router}/v1/chat/completions", json={**chat, "stream": True},
                                timeout=30, stream=True))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == content

    sent, received = _counters(prefill), _counters(decode)
    assert sent["kv_transfers_sent"] == received["kv_transfers_received"] == 4
    assert sent["kv_bytes_sent"] == received["kv_bytes_received"] > 0
    # 4 requests: 2 x 4 prompt tokens + 2 x the chat template's tokens, 1024 B per token
    assert received["kv_bytes_received"] % 1024 == 0
    assert received["kv_verify_failures"] == 0


def test_256_concurrent_requests_through_the_router_all_succeed(procs, model_dir: Path) -> None:
    router, prefill, decode, _ = _stack(procs, model_dir)

    def one(i: int) -> tuple[int, int]:
        body = {"text": f"bada kefo {i % 10}", "sampling_params": {"max_new_tokens": 32,
                                                                   "ignore_eos": True}}
        r = requests.post(f"{router}/generate", json=body, timeout=120)
        return r.status_code, r.json()["meta_info"]["completion_tokens"] if r.ok else -1

    with concurrent.futures.ThreadPoolExecutor(256) as pool:
        results = list(pool.map(one, range(256)))
    assert results == [(200, 32)] * 256
    sent, received = _counters(prefill), _counters(decode)
    assert sent["kv_transfers_sent"] == received["kv_transfers_received"] == 256
    assert sent["kv_bytes_sent"] == received["kv_bytes_received"] == 256 * 3 * 1024


def test_corrupted_kv_fails_the_request_loudly_never_wrong_text(procs, model_dir: Path) -> None:
    router, prefill, decode, (_, decode_proc, _) = _stack(
        procs, model_dir, "--rehearsal-fail-kv-checksum", router_flags=("--disable-retries",))
    r = requests.post(f"{router}/generate", json={"text": "bada kefo", "sampling_params": {
        "max_new_tokens": 8}}, timeout=60)
    assert r.status_code == 500
    error = r.json()["error"]
    assert "failed verification" in error["message"] and "refusing to decode" in error["message"]
    assert "text" not in r.json()  # an error, never an answer from a corrupt KV cache
    assert "failed verification" in decode_proc.log()
    received = _counters(decode)
    assert received["kv_verify_failures"] == 1 and received["kv_transfers_received"] == 0
    assert received["kv_bytes_received"] == 0


def test_bad_choice_exits_nonzero_with_sglang_message() -> None:
    out = subprocess.run([sys.executable, "-m", "pd_rehearsal", "--model-path", "x",
                          "--disaggregation-mode", "bogus"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "argument --disaggregation-mode: invalid choice: 'bogus'" in out.stderr


def test_mooncake_metadata_in_etcd(procs, model_dir: Path, tmp_path: Path) -> None:
    """`disagg_mooncake_metadata: etcd`: both engines' Mooncake segments live in a real etcd."""
    client, peer = free_port(), free_port()
    etcd = procs("etcd", ["etcd", "--data-dir", str(tmp_path / "etcd"), "--listen-client-urls",
                          f"http://127.0.0.1:{client}", "--advertise-client-urls",
                          f"http://127.0.0.1:{client}", "--listen-peer-urls",
                          f"http://127.0.0.1:{peer}"])
    wait_http(f"http://127.0.0.1:{client}/health", etcd)
    metadata = {"PD_REHEARSAL_MOONCAKE_METADATA": f"etcd://127.0.0.1:{client}"}
    p_port, d_port, boot, r_port = free_port(), free_port(), free_port(), free_port()
    prefill = procs("prefill", engine_argv(model_dir, p_port, "--disaggregation-mode", "prefill",
                                           "--disaggregation-bootstrap-port", str(boot)),
                    **metadata)
    decode = procs("decode", engine_argv(model_dir, d_port, "--disaggregation-mode", "decode"),
                   **metadata)
    wait_http(f"http://127.0.0.1:{p_port}/health", prefill)
    wait_http(f"http://127.0.0.1:{d_port}/health", decode)
    router = procs("router", _router_argv(r_port, [(f"http://127.0.0.1:{p_port}", boot)],
                                          [f"http://127.0.0.1:{d_port}"]))
    wait_http(f"http://127.0.0.1:{r_port}/readiness", router)
    r = requests.post(f"http://127.0.0.1:{r_port}/generate", json={
        "text": "bada", "sampling_params": {"max_new_tokens": 4}}, timeout=30)
    assert r.status_code == 200, r.text
    info = requests.get(f"http://127.0.0.1:{d_port}/get_server_info", timeout=5).json()
    assert info["counters"]["kv_transfers_received"] == 1
    assert f"metadata etcd://127.0.0.1:{client}" in decode.log()


def test_restarted_prefill_is_picked_up_without_restarting_decode(procs, model_dir: Path) -> None:
    """A prefill that restarts gets a new rank port and Mooncake session; decode notices."""
    p_port, d_port, boot, r_port = free_port(), free_port(), free_port(), free_port()
    p_argv = engine_argv(model_dir, p_port, "--disaggregation-mode", "prefill",
                         "--disaggregation-bootstrap-port", str(boot))
    prefill = procs("prefill", p_argv)
    decode = procs("decode", engine_argv(model_dir, d_port, "--disaggregation-mode", "decode"))
    wait_http(f"http://127.0.0.1:{p_port}/health", prefill)
    wait_http(f"http://127.0.0.1:{d_port}/health", decode)
    router = procs("router", _router_argv(r_port, [(f"http://127.0.0.1:{p_port}", boot)],
                                          [f"http://127.0.0.1:{d_port}"]))
    wait_http(f"http://127.0.0.1:{r_port}/readiness", router)
    body = {"text": "bada kefo", "sampling_params": {"max_new_tokens": 4}}
    assert requests.post(f"http://127.0.0.1:{r_port}/generate", json=body, timeout=30).ok

    prefill.stop()
    again = procs("prefill-again", p_argv)
    wait_http(f"http://127.0.0.1:{p_port}/health", again)
    r = requests.post(f"http://127.0.0.1:{r_port}/generate", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert _counters(f"http://127.0.0.1:{p_port}")["kv_transfers_sent"] == 1
    assert "forgetting prefill" in decode.log()
