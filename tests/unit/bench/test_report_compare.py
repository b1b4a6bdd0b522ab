"""pdbench report (PNG plots, report.md) and compare (per-metric deltas)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pdbench import cli, compare, report

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "bench"
SEED_E2 = FIX / "seed-e2_benchmark_fixture_xP1_yD1_rehearsal-tiny_CONCURRENCY.log"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def run_dir(tmp_path):
    doc = cli.parse_paths([SEED_E2, FIX / "rehearsal-0.5.2"], base=FIX)
    out = tmp_path / "results"
    cli.write_outputs(doc, out)
    return out


def test_report_writes_three_readable_pngs_and_the_markdown(run_dir):
    doc = report.load(run_dir)[0]
    written = report.write(doc, run_dir, {"run_id": "r1", "engine_is_rehearsal": True,
                                          "router_url": "http://x:1"})
    for key in ("throughput", "latency", "tradeoff"):
        width, height = _png_size(Path(written[key]))
        assert width >= 900 and height >= 500
    md = (run_dir / "report.md").read_text()
    for png in report.PLOTS.values():
        assert f"]({png})" in md
    assert "3 failed request(s)" in md and 'color:red' in md
    assert "not inference" in md and "**Router:** http://x:1" in md
    assert "`rehearsal-0.5.2/failures.log`" in md


def test_report_names_the_transfer_encoding_errors_with_the_router_settings(tmp_path):
    doc = cli.parse_paths([FIX / "transfer-encoding-0.5.2"], base=FIX)
    cli.write_outputs(doc, tmp_path)
    loaded = report.load(tmp_path)[0]
    report.write(loaded, tmp_path, {"run_id": "te512"})
    md = (tmp_path / "report.md").read_text()
    failed = md.split("## Failed requests", 1)[1].split("\n## ", 1)[0]
    assert "25 failed request(s) of 1024 in 1 run(s), concurrency up to 512" in failed
    assert ("- <span style=\"color:red\">**25 requests failed with TransferEncodingError (400, "
            "not enough data for the transfer length header) at concurrency 512**</span>: see "
            "router settings `router_request_timeout_secs`, `router_disable_retries`, "
            "`router_retry_*`, `router_cb_*`") in failed
    assert "(25 TransferEncodingError)" in md  # the run's Failed cell


def test_series_averages_iterations_and_flags_failures(run_dir):
    doc = report.load(run_dir)[0]
    data = report.series(doc["runs"])
    e2 = data["ISL/OSL 48/24"]
    assert [p["concurrency"] for p in e2] == [2, 8]
    assert all(len(p["runs"]) == 2 for p in e2)  # iterations 1 and 2
    runs = [r["output_throughput"] for r in doc["runs"] if r.get("isl") == 48
            and r["max_concurrency"] == 2 and r.get("preset") is None]
    assert e2[0]["output_throughput"] == pytest.approx(sum(runs) / len(runs))
    overlong = data["overlong (33000/32)"]
    assert overlong[0]["failed"] == 3


def test_load_finds_bench_json_from_any_level(tmp_path, run_dir):
    assert report.load(run_dir.parent)[1] == run_dir / "bench.json"
    assert report.load(run_dir / "bench.json")[1] == run_dir / "bench.json"
    with pytest.raises(SystemExit, match="no bench.json"):
        report.load(tmp_path / "nothing")


def _doc(rows):
    return {"runs": rows, "summary": {"failed_requests": sum(r.get("failed_requests", 0)
                                                             for r in rows),
                                      "runs": len(rows), "requests": 32}}


def test_compare_deltas_directions_and_failures():
    base = {"preset": "tiny", "max_concurrency": 8, "output_throughput": 100.0,
            "median_ttft_ms": 50.0, "p99_itl_ms": 10.0, "failed_requests": 0,
            "successful_requests": 16}
    a = _doc([base, dict(base, max_concurrency=16), dict(base, max_concurrency=64)])
    b = _doc([dict(base, output_throughput=120.0, median_ttft_ms=60.0, p99_itl_ms=10.1),
              dict(base, max_concurrency=16, failed_requests=2, successful_requests=14),
              dict(base, max_concurrency=1024)])
    md, data = compare.compare(a, b, "A", "B", threshold=2.0)
    point = {m["metric"]: m for m in data["points"][0]["metrics"]}
    assert point["output_throughput"]["delta"] == 20.0
    assert point["output_throughput"]["percent"] == pytest.approx(20.0)
    assert point["output_throughput"]["verdict"] == "better"
    assert point["median_ttft_ms"]["verdict"] == "worse"
    assert point["p99_itl_ms"]["verdict"] == "~"  # +1% is within the threshold
    failed = {m["metric"]: m for m in data["points"][1]["metrics"]}["failed_requests"]
    assert failed["b"] == 2 and failed["verdict"] == "worse"
    assert '<span style="color:red">**2**</span>' in md
    assert data["only_a"] == [["tiny", 64]] and data["only_b"] == [["tiny", 1024]]
    assert "| Output tok/s | 100 | 120 | 20 | +20.0% | better |" in md


def test_compare_cli_on_two_recorded_runs(tmp_path, capsys):
    for name, src in (("a", SEED_E2), ("b", FIX / "seed-e1_benchmark_fixture_CONCURRENCY.log")):
        cli.write_outputs(cli.parse_paths([src]), tmp_path / name / "bench" / "results")
    out = tmp_path / "cmp.md"
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                     str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text()
    assert "## Unmatched points" in printed and "only in B: 64/32 @ 4" in printed
