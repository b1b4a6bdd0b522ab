"""Integration: SGLang's bench_serving and our GSM8K client through the loopback PD stack.

A prefill and a decode rehearsal engine behind the real sglang-router 0.3.2 (PD mode, KV over
Mooncake); the client is ``python -m sglang.bench_serving`` 0.5.2 run by ``pdbench point``.
Checks the numbers for consistency (successful = prompts; output throughput x duration = output
tokens), that the parsed numbers are bench_serving's printed numbers, and a 1024-concurrency run
with no failed request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from benchparse import collect, document_markdown, parse_gsm8k, parse_jsonl, summarize

from pdbench import dataset
from tests.conftest import engine_argv, free_port, wait_http

pytestmark = pytest.mark.integration


def _stack(procs, model_dir: Path, *prefill_flags: str) -> tuple[str, str, str]:
    p_port, d_port, boot, r_port = free_port(), free_port(), free_port(), free_port()
    prefill = procs("prefill", engine_argv(
        model_dir, p_port, "--disaggregation-mode", "prefill",
        "--disaggregation-bootstrap-port", str(boot), *prefill_flags))
    decode = procs("decode", engine_argv(model_dir, d_port, "--disaggregation-mode", "decode",
                                         "--rehearsal-decode-ms-per-token", "2"))
    wait_http(f"http://127.0.0.1:{p_port}/health", prefill)
    wait_http(f"http://127.0.0.1:{d_port}/health", decode)
    router = procs("router", [
        sys.executable, "-m", "sglang_router.launch_router", "--pd-disaggregation",
        "--prefill", f"http://127.0.0.1:{p_port}", str(boot),
        "--decode", f"http://127.0.0.1:{d_port}", "--host", "127.0.0.1", "--port", str(r_port),
        "--prometheus-port", str(free_port()), "--worker-startup-check-interval", "1",
        "--log-level", "warn"])
    wait_http(f"http://127.0.0.1:{r_port}/readiness", router)
    return (f"http://127.0.0.1:{r_port}", f"http://127.0.0.1:{p_port}",
            f"http://127.0.0.1:{d_port}")


def _point(tmp: Path, url: str, model_dir: Path, data: Path, con: int, prompts: int,
           isl: int, osl: int) -> tuple[dict, dict]:
    log, jsonl = tmp / f"con{con}.log", tmp / f"con{con}.jsonl"
    marker = (f"[RUNNING] prompts {prompts} isl {isl} osl {osl} con {con} model rehearsal-tiny "
              f"xP=1 yD=1 job=it preset=tiny iter=1")
    out = subprocess.run(
        [sys.executable, "-m", "pdbench", "point", "--log", str(log), "--jsonl", str(jsonl),
         "--marker", marker, "--timeout", "300", "--",
         "--backend", "sglang", "--base-url", url, "--model", str(model_dir),
         "--tokenizer", str(model_dir), "--dataset-name", "random", "--dataset-path", str(data),
         "--random-input-len", str(isl), "--random-output-len", str(osl),
         "--random-range-ratio", "1", "--num-prompts", str(prompts),
         "--max-concurrency", str(con), "--warmup-requests", "1", "--pd-separated",
         "--disable-tqdm"],
        capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr + log.read_text()[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    doc = collect([(log.name, log.read_text()), (jsonl.name, jsonl.read_text())])
    assert doc["summary"]["warnings"] == []
    (row,) = doc["runs"]
    return row, summary


def _kv(url: str) -> dict:
    return requests.get(f"{url}/get_server_info", timeout=5).json()["counters"]


def test_sweep_through_the_router_is_consistent(procs, model_dir: Path, tmp_path: Path) -> None:
    router, prefill, decode = _stack(procs, model_dir)
    data = tmp_path / "prompts.json"
    dataset.write(data, 64)
    isl, osl = 64, 32
    sent = 0
    for con in (1, 4, 16):
        prompts = max(16, 2 * con)
        row, summary = _point(tmp_path, router, model_dir, data, con, prompts, isl, osl)
        sent += prompts + 1  # + bench_serving's warm-up request
        assert summary["rc"] == 0 and summary["failed_requests"] == 0
        # every request came back, with exactly the asked lengths (ignore_eos, range ratio 1)
        assert row["num_prompts"] == row["successful_requests"] == prompts
        assert row["failed_requests"] == 0 and row["error_lines"] == 0
        assert row["total_input_tokens"] == prompts * isl
        assert row["total_output_tokens"] == row["total_output_tokens_retokenized"]
        assert row["total_output_tokens"] == prompts * osl
        assert (row["max_concurrency"], row["isl"], row["osl"]) == (con, isl, osl)
        # parsed (printed, 2 decimals) == the --output-file record rounded as bench_serving prints
        assert row["mismatches"] == []
        # output throughput x duration = output tokens: exactly for the record's full precision,
        # within the printed rounding (each value +-0.005) for the printed block
        rec = parse_jsonl((tmp_path / f"con{con}.jsonl").read_text())[0]
        assert rec["output_throughput"] * rec["duration_s"] == pytest.approx(
            rec["total_output_tokens"], rel=1e-9)
        thr, dur = row["output_throughput"], row["duration_s"]
        assert abs(thr * dur - row["total_output_tokens"]) <= 0.005 * (thr + dur) + 1e-6
        assert thr * dur == pytest.approx(row["total_output_tokens"], rel=0.02)
        assert row["request_throughput"] * dur == pytest.approx(prompts, rel=0.02)
        assert row["input_throughput"] * dur == pytest.approx(prompts * isl, rel=0.02)
        assert row["median_ttft_ms"] <= row["p99_ttft_ms"]
        assert row["median_itl_ms"] <= row["p99_itl_ms"] <= row["max_itl_ms"]
    # every request went prefill -> Mooncake -> decode
    assert _kv(prefill)["kv_transfers_sent"] == _kv(decode)["kv_transfers_received"] == sent


def test_gsm8k_through_the_router(procs, model_dir: Path, tmp_path: Path) -> None:
    router, _, decode = _stack(procs, model_dir)
    data = Path(__file__).resolve().parents[2] / "data" / "gsm8k-sample" / "test.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "pdbench", "gsm8k", "--base-url", router, "--data-path",
         str(data), "--num-questions", "32", "--num-shots", "5", "--parallel", "8",
         "--max-new-tokens", "32", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (result,) = parse_gsm8k(out.stdout)
    assert result["num_questions"] == 32 and result["failed_requests"] == 0
    details = [json.loads(x) for x in (tmp_path / "gsm8k_details.jsonl").read_text().splitlines()]
    right = sum(d["pred"] == d["label"] for d in details)
    invalid = sum(d["pred"] is None for d in details)
    # the printed lines are the measured values (whatever the rehearsal engine scores)
    assert result["accuracy"] == round(right / 32, 3)
    assert result["invalid"] == round(invalid / 32, 3)
    tokens = sum(d["completion_tokens"] for d in details)
    assert tokens == 32 * 32 or all(0 < d["completion_tokens"] <= 32 for d in details)
    assert _kv(decode)["kv_transfers_received"] == 32


def test_1024_concurrency_through_the_router_has_no_failed_request(
        procs, model_dir: Path, tmp_path: Path) -> None:
    router, prefill, decode = _stack(procs, model_dir)
    data = tmp_path / "prompts.json"
    dataset.write(data, 2048)
    row, summary = _point(tmp_path, router, model_dir, data, 1024, 2048, 32, 16)
    assert summary["failed_requests"] == 0
    assert row["num_prompts"] == row["successful_requests"] == 2048
    assert row["failed_requests"] == 0 and row["error_lines"] == 0
    assert row["total_output_tokens"] == 2048 * 16
    # the client really held hundreds of requests in flight
    assert row["measured_concurrency"] > 256
    assert _kv(prefill)["kv_transfers_sent"] == _kv(decode)["kv_transfers_received"] == 2049
    md = document_markdown({"runs": [row], "summary":
                                           summarize([row])})
    assert "**0 failed requests** of 2048 in 1 run(s), concurrency up to 1024." in md
