"""Integration: ``ansible-playbook playbooks/benchmark.yml`` against the loopback PD stack.

The inventory names a proxy, a prefill and a decode host (all 127.0.0.1, never contacted: every
benchmark task runs on the controller) and points ``benchmark_router_url`` at the loopback
router. Checks the run directory, the tables, the plots and the report, and that failed
requests fail the play after the report is written.

The clients in a container on the proxy host (``benchmark_client_host``) are tested by
``tests/integration/test_deploy.py::test_site_deploys_serves_and_benchmarks_into_one_run_record``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_loopback_inventory
from tests.integration.test_bench_pd import _stack

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _inventory(tmp: Path, model_dir: Path, router: str, **extra: object) -> Path:
    return write_loopback_inventory(tmp, {
        "disagg_model_profile": model_dir.name, "disagg_model_root": str(model_dir.parent),
        "disagg_launcher": ["python3", "-m", "pd_rehearsal"],
        "disagg_runs_dir": str(tmp / "runs"), "benchmark_router_url": router,
        "benchmark_concurrency": [2, 8],
        "benchmark_presets": [{"name": "tiny", "isl": 64, "osl": 32}],
        "benchmark_gsm8k_num_questions": 16, "benchmark_gsm8k_parallel": 8,
        "benchmark_gsm8k_max_new_tokens": 32, "benchmark_warmup_concurrency": 4,
        "benchmark_warmup_prompts": 8, **extra,
    })


def _play(inv: Path, run_id: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/benchmark.yml",
         "-i", str(inv), "-e", f"disagg_run_id={run_id}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_playbook_writes_logs_tables_plots_and_report(procs, model_dir, tmp_path) -> None:
    router, _, _ = _stack(procs, model_dir)
    inv = _inventory(tmp_path, model_dir, router)
    out = _play(inv, "it1")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    bench = tmp_path / "runs" / "it1" / "bench"
    for rel in ("serving/tiny/iter1_con2.log", "serving/tiny/iter1_con2.jsonl",
                "serving/tiny/iter1_con8.log", "serving/tiny/iter1_con8.jsonl",
                "gsm8k/gsm8k.log", "gsm8k/gsm8k.json", "warmup/warmup.log", "meta.json",
                "dataset/sharegpt-offline.json", "results/bench.csv", "results/bench.json",
                "results/bench.md", "results/report.md", "results/throughput_vs_concurrency.png",
                "results/latency_vs_concurrency.png", "results/throughput_vs_latency.png"):
        assert (bench / rel).is_file() and (bench / rel).stat().st_size > 0, rel
    rows = list(csv.DictReader((bench / "results" / "bench.csv").open()))
    got = [(r["Concurrency"], r["Total_Prompts"], r["Successful_Requests"], r["Failed_Requests"])
           for r in rows]
    assert got == [("2", "16", "16", "0"), ("8", "16", "16", "0")]
    assert {r["Model"] for r in rows} == {model_dir.name} and rows[0]["xP_yD"] == "1p1d"
    doc = json.loads((bench / "results" / "bench.json").read_text())
    assert doc["gsm8k"][0]["num_questions"] == 16 and doc["summary"]["failed_requests"] == 0
    report = (bench / "results" / "report.md").read_text()
    assert "**0 failed requests** of 32 in 2 run(s), concurrency up to 8." in report
    assert "![Output throughput vs concurrency](throughput_vs_concurrency.png)" in report
    assert "not inference" in report
    meta = json.loads((bench / "meta.json").read_text())
    assert meta["router_url"] == router and meta["run_id"] == "it1"
    # the marker makes our logs readable by the seed's own parser too
    first = (bench / "serving" / "tiny" / "iter1_con2.log").read_text().splitlines()[0]
    assert first.startswith("[RUNNING] prompts 16 isl 64 osl 32 con 2 model ")
    assert "xP=1 yD=1 job=it1" in first


def test_failed_requests_fail_the_play_after_the_report(procs, model_dir, tmp_path) -> None:
    router, _, _ = _stack(procs, model_dir, "--rehearsal-prefill-ms-per-1k-tokens", "1")
    # prompts of ~33k tokens against a 32768-token context: some requests fail
    inv = _inventory(tmp_path, model_dir, router, benchmark_gsm8k=False,
                     benchmark_warmup_run=False, benchmark_warmup_requests=0,
                     benchmark_concurrency=[4],
                     benchmark_presets=[{"name": "overlong", "isl": 33000, "osl": 16}],
                     benchmark_random_range_ratio=0.98, benchmark_prompts_min=8)
    out = _play(inv, "it2")
    assert out.returncode != 0
    assert "failed request(s) (limit 0)" in out.stdout
    results = tmp_path / "runs" / "it2" / "bench" / "results"
    report = (results / "report.md").read_text()
    assert 'color:red' in report and "FAILED" in report
    doc = json.loads((results / "bench.json").read_text())
    (row,) = doc["runs"]
    assert row["failed_requests"] > 0
    assert row["failed_requests"] + row["successful_requests"] == row["num_prompts"] == 8
