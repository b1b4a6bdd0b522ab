"""Tables for the benchmark parser (the public ``benchparse`` module_utils API) on recorded logs
(tests/fixtures/bench/SOURCES.md)."""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".cache" / "collections"))

from ansible_collections.inferops.disagg.plugins.module_utils import benchparse as bp  # noqa: E402

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "bench"
REC = FIX / "rehearsal-0.5.2"


def text(name: str) -> str:
    return (FIX / name).read_text()


def serving(name: str, **kw) -> list[dict]:
    return bp.parse_serving(text(name), name, **kw)


# ---------------------------------------------------------------------------------------------
# Values typed from the third-party recordings (exactly as printed)
# ---------------------------------------------------------------------------------------------
THIRD_PARTY = [
    # SGLang ~0.4.5 (typo "reqeuest", Concurrency, P95/Max ITL, no TPOT)
    ("sglang-0.4.x_bbuf-shared-experts.md", 0, {
        "backend": "sglang", "request_rate": 1.0, "max_concurrency": None,
        "successful_requests": 300, "duration_s": 317.08, "total_input_tokens": 95293,
        "total_output_tokens": 60411, "total_output_tokens_retokenized": 60140,
        "request_throughput": 0.95, "input_throughput": 300.53, "output_throughput": 190.52,
        "total_throughput": 491.05, "measured_concurrency": 7.18,
        "mean_e2e_latency_ms": 7586.12, "median_e2e_latency_ms": 4788.43,
        "mean_ttft_ms": 402.01, "median_ttft_ms": 297.76, "p99_ttft_ms": 1634.92,
        "mean_itl_ms": 35.95, "median_itl_ms": 28.17, "p95_itl_ms": 36.35,
        "p99_itl_ms": 239.92, "max_itl_ms": 1722.10, "closed": True,
    }),
    # the same file's second block has no closing line: complete, closed False
    ("sglang-0.4.x_bbuf-shared-experts.md", 1, {
        "duration_s": 316.52, "total_output_tokens_retokenized": 58378, "total_throughput": 491.92,
        "measured_concurrency": 6.43, "p99_ttft_ms": 1241.48, "max_itl_ms": 1447.12,
        "closed": False,
    }),
    ("sglang-0.4.x_bbuf-shared-experts.md", 2, {
        "request_rate": 4.0, "duration_s": 120.67, "output_throughput": 500.61,
        "measured_concurrency": 52.17, "mean_e2e_latency_ms": 20983.88,
        "p99_itl_ms": 830.43, "max_itl_ms": 3630.63, "closed": True,
    }),
    # a later 0.5.x: text/vision tokens, peak throughput, TPOT section back
    ("sglang-0.5.x-late_jiewcc-notes.md", 0, {
        "request_rate": 20.0, "max_concurrency": 64, "successful_requests": 100,
        "duration_s": 67.53, "total_input_tokens": 33694, "total_input_text_tokens": 33694,
        "total_input_vision_tokens": 0, "total_output_tokens": 19062,
        "total_output_tokens_retokenized": 18900, "request_throughput": 1.48,
        "input_throughput": 498.98, "output_throughput": 282.29,
        "peak_output_throughput": 1205.00, "peak_concurrent_requests": 71.0,
        "total_throughput": 781.27, "measured_concurrency": 49.65,
        "mean_ttft_ms": 6465.07, "median_ttft_ms": 7866.46, "p99_ttft_ms": 14051.11,
        "mean_tpot_ms": 532.97, "median_tpot_ms": 200.21, "p99_tpot_ms": 5450.87,
        "mean_itl_ms": 142.71, "median_itl_ms": 51.82, "p95_itl_ms": 677.33,
        "p99_itl_ms": 2200.30, "max_itl_ms": 15796.54,
    }),
    # 0.3-era: "Total throughput (tok/s)", no concurrency lines, TPOT section
    ("sglang-0.3-era_dlora-results.md", 0, {
        "request_rate": 2.0, "successful_requests": 996, "duration_s": 264.25,
        "total_throughput": 2121.89, "median_tpot_ms": -0.0, "p99_tpot_ms": 28.33,
        "mean_itl_ms": 0.0, "p99_itl_ms": 0.0, "failed_requests": None, "failed_source": None,
    }),
    # vLLM's block: Failed requests line, "Maximum request concurrency"
    ("vllm_tt-inference-server-pr2119-failed.md", 0, {
        "successful_requests": 999, "failed_requests": 1, "failed_source": "block",
        "max_concurrency": 64, "duration_s": 1.33, "output_throughput": 96480.56,
        "peak_concurrent_requests": 778.0, "total_throughput": 192958.09,
        "mean_tpot_ms": 0.10, "p99_itl_ms": 5.26,
    }),
]


@pytest.mark.parametrize(("name", "index", "expected"), THIRD_PARTY,
                         ids=[f"{c[0]}#{c[1]}" for c in THIRD_PARTY])
def test_third_party_blocks_parse_to_the_printed_values(name, index, expected):
    row = serving(name)[index]
    for key, value in expected.items():
        assert row.get(key, "absent") == value, key


def test_block_counts_and_absent_keys():
    assert len(serving("sglang-0.4.x_bbuf-shared-experts.md")) == 3
    old = serving("sglang-0.3-era_dlora-results.md")[0]
    assert "measured_concurrency" not in old and "max_concurrency" not in old
    assert "mean_tpot_ms" not in serving("sglang-0.4.x_bbuf-shared-experts.md")[0]


# ---------------------------------------------------------------------------------------------
# Our recordings: every printed "Label: value" of the block equals the parsed value
# ---------------------------------------------------------------------------------------------
_LINE = re.compile(r"^(?P<label>[A-Za-z][^:]*?):\s+(?P<value>\S+)\s*$")


def printed_pairs(log: str) -> list[dict]:
    """An independent reading of each block: {label: printed text}."""
    blocks, cur = [], None
    for line in log.splitlines():
        if "Serving Benchmark Result" in line:
            cur = {}
            blocks.append(cur)
        elif cur is not None and line.startswith("=" * 50):
            cur = None
        elif cur is not None and (m := _LINE.match(line.strip())):
            cur[m.group("label")] = m.group("value")
    return blocks


RECORDED = sorted(p.relative_to(FIX).as_posix() for p in FIX.rglob("*.log")
                  if not any(w in p.name for w in ("truncated", "gsm8k", "crashed")))


@pytest.mark.parametrize("name", RECORDED)
def test_parsed_numbers_equal_the_printed_numbers(name):
    log = text(name)
    rows = bp.parse_serving(log, name)
    blocks = printed_pairs(log)
    assert len(rows) == len(blocks) > 0
    for row, block in zip(rows, blocks, strict=True):
        for label, raw in block.items():
            key, _kind = bp.key_for(label)
            value = row[key]
            if raw == "inf":
                assert value == math.inf
            elif raw == "not set":
                assert value is None
            elif isinstance(value, str):
                assert value == raw
            else:
                assert value == float(raw), (label, raw, value)
                assert f"{float(raw):.2f}" == f"{value:.2f}"


@pytest.mark.parametrize("stem", ["con2_tqdm", "con8", "con32_ratio05", "failures"])
def test_block_and_output_file_record_are_the_same_run(stem):
    row = bp.parse_serving((REC / f"{stem}.log").read_text(), stem)[0]
    rec = bp.parse_jsonl((REC / f"{stem}.jsonl").read_text(), stem)[0]
    merged = bp.merge_record(row, rec)
    assert merged["mismatches"] == []
    # the record adds what 0.5.2's block does not print
    for key in ("mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms", "p99_e2e_latency_ms"):
        assert key not in row and isinstance(merged[key], float)
    # printed values win; they are the record's values rounded the way bench_serving prints
    assert merged["output_throughput"] == row["output_throughput"]
    assert f"{rec['output_throughput']:.2f}" == f"{row['output_throughput']:.2f}"


def test_records_of_another_run_are_reported_as_mismatches():
    row = bp.parse_serving((REC / "con8.log").read_text(), "con8")[0]
    rec = bp.parse_jsonl((REC / "con2_tqdm.jsonl").read_text(), "x")[0]
    assert {"max_concurrency", "duration_s", "output_throughput"} <= set(
        bp.merge_record(row, rec)["mismatches"])


# ---------------------------------------------------------------------------------------------
# Context: markers, Namespace, failed requests
# ---------------------------------------------------------------------------------------------
def test_pdbench_point_marker_and_namespace_give_the_run_context():
    row = bp.parse_serving((REC / "con8.log").read_text(), "con8")[0]
    assert (row["isl"], row["osl"], row["max_concurrency"], row["num_prompts"]) == (48, 24, 8, 16)
    assert (row["model"], row["xp"], row["yd"], row["job"]) == ("rehearsal-tiny", 1, 1, "fixture")
    assert (row["preset"], row["iteration"]) == ("tiny", 1)
    assert (row["successful_requests"], row["failed_requests"]) == (16, 0)
    assert row["failed_source"] == "num_prompts" and row["error_lines"] == 0


def test_failed_requests_are_prompts_minus_successful():
    row = bp.parse_serving((REC / "failures.log").read_text(), "failures.log")[0]
    assert (row["num_prompts"], row["successful_requests"], row["failed_requests"]) == (12, 9, 3)
    md = bp.to_markdown([row])
    assert '<span style="color:red">**3 FAILED**</span>' in md
    summary = bp.summarize([row])
    assert summary["failed_requests"] == 3
    assert summary["runs_with_failures"][0]["failed_requests"] == 3
    assert 'color:red' in bp.failed_sentence(summary)


def test_seed_e1_markers():
    rows = serving("seed-e1_benchmark_fixture_CONCURRENCY.log")
    assert [(r["isl"], r["osl"], r["max_concurrency"], r["num_prompts"]) for r in rows] == [
        (64, 32, 4, 16), (64, 32, 16, 32)]
    assert all(r["model"] == "rehearsal-tiny" and r["xp"] == 1 and r["yd"] == 1
               and r["job"] == "fixture" and r["failed_requests"] == 0 for r in rows)
    assert bp.to_csv(rows).splitlines()[1].startswith("rehearsal-tiny,1p1d,64,32,4,,16,")


def test_seed_e2_log_iterations_and_test_run():
    name = "seed-e2_benchmark_fixture_xP1_yD1_rehearsal-tiny_CONCURRENCY.log"
    rows = serving(name)
    assert len(rows) == 9 and rows[0]["warmup"] is True
    assert rows[0]["max_concurrency"] == 8  # from bench_serving's Namespace line
    sweep = [(r["iteration"], r["isl"], r["osl"], r["max_concurrency"]) for r in rows[1:]]
    assert sweep == [(i, isl, 24, c) for i in (1, 2) for isl in (48, 96) for c in (2, 8)]
    assert all(r["num_prompts"] == 16 and r["failed_requests"] == 0 for r in rows)
    doc = bp.collect([(name, text(name))])
    assert len(doc["runs"]) == 8 and len(doc["warmup"]) == 1
    assert doc["summary"]["warmup_runs"] == 1


def test_output_error_lines_are_counted():
    log = (REC / "con8.log").read_text()
    head, block = log.split("\n\n====", 1)
    noisy = head + "\noutput.error='Traceback (most recent call last):\\n ...'\n\n====" + block
    assert bp.parse_serving(noisy, "x")[0]["error_lines"] == 1


# ---------------------------------------------------------------------------------------------
# Known errors: the seed's TransferEncodingError at 512+ (tests/fixtures/bench/SOURCES.md)
# ---------------------------------------------------------------------------------------------
TE = FIX / "transfer-encoding-0.5.2"
TE_KEY = "transfer_encoding_400"
SEED_FORM = ("TransferEncodingError: 400, message='Not enough data to satisfy transfer length "
             "header.'")


def _printed_errors(log: str) -> list[str]:
    """The errors bench_serving printed as ``output.error='...'`` (the strings it stores)."""
    return [ast.literal_eval(line.split("output.error=", 1)[1])
            for line in log.splitlines() if line.startswith("output.error=")]


def test_transfer_encoding_errors_at_512_are_named_and_counted():
    log = (TE / "con512.log").read_text()
    (row,) = bp.parse_serving(log, "con512.log")
    assert (row["max_concurrency"], row["num_prompts"], row["successful_requests"]) == (
        512, 1024, 999)
    assert row["failed_requests"] == 25 and row["error_lines"] == 25
    assert row["known_errors"] == {TE_KEY: {"requests": 25, "lines": 0}}


def test_each_printed_error_has_both_forms_and_is_classified():
    errors = _printed_errors((TE / "con512.log").read_text())
    assert len(errors) == 25
    for error in errors:
        assert "aiohttp.http_exceptions.TransferEncodingError: 400, message:\n  Not enough" \
            in error
        assert ("aiohttp.client_exceptions.ClientPayloadError: Response payload is not "
                "completed: <TransferEncodingError: 400, message='Not enough data to satisfy "
                "transfer length header.'>") in error
        assert bp.classify_error(error) == TE_KEY


@pytest.mark.parametrize("line", [
    SEED_FORM,  # aiohttp 3.8, as MAD_SPEC 9.10 quotes it
    "aiohttp.client_exceptions.ClientPayloadError: Response payload is not completed: "
    "<TransferEncodingError: 400, message='Not enough data to satisfy transfer length header.'>",
    "  Not enough data to satisfy transfer length header.",  # aiohttp >= 3.9 str, 2nd line
    "TransferEncodingError: 400, message='Not enough data for satisfy transfer length header.'",
])
def test_every_form_of_the_message_is_recognised(line):
    assert bp.classify_error(line) == TE_KEY


def test_a_chained_traceback_over_several_lines_counts_once():
    log = (TE / "crashed-warmup_con512.log").read_text()
    assert bp.parse_serving(log, "w") == []  # the run crashed before its block
    # the warm-up's output.error= line, then the same error in ValueError's traceback
    assert bp.scan_known_errors(log) == {TE_KEY: {"requests": 1, "lines": 1}}
    lines = [x for x in log.splitlines() if not x.startswith("output.error=")]
    assert sum("Not enough data to satisfy" in x for x in lines) == 2  # cause + wrapper
    assert bp.scan_known_errors("\n".join(lines)) == {TE_KEY: {"requests": 0, "lines": 1}}
    twice = "\n".join(lines[lines.index("Traceback (most recent call last):"):]) + "\n"
    assert bp.scan_known_errors(twice + twice) == {TE_KEY: {"requests": 0, "lines": 2}}
    prefixed = "\n".join(f"proxy-1 | {x}" for x in twice.splitlines())
    assert bp.scan_known_errors(prefixed) == {TE_KEY: {"requests": 0, "lines": 1}}


def test_seed_form_lines_before_a_block_are_counted_per_line():
    log = (REC / "con8.log").read_text()
    head, block = log.split("\n\n====", 1)
    noisy = head + f"\n{SEED_FORM}\n[proxy] {SEED_FORM}\n\n====" + block
    (row,) = bp.parse_serving(noisy, "x")
    assert row["known_errors"] == {TE_KEY: {"requests": 0, "lines": 2}}
    assert row["error_lines"] == 0 and row["failed_requests"] == 0


def test_unknown_errors_keep_being_counted_without_a_name():
    log = (REC / "con8.log").read_text()
    head, block = log.split("\n\n====", 1)
    other = "output.error='Traceback (most recent call last):\\n  ...\\nConnectionResetError'"
    (row,) = bp.parse_serving(head + f"\n{other}\n\n====" + block, "x")
    assert row["error_lines"] == 1 and row["known_errors"] == {}
    assert bp.summarize([row])["known_errors"] == []


def test_known_errors_in_the_summary_tables_and_markdown():
    doc = bp.collect([(n, (TE / n).read_text()) for n in ("con512.log", "con512.jsonl")])
    (row,) = doc["runs"]
    assert row["mismatches"] == [] and row["known_errors"][TE_KEY]["requests"] == 25
    (entry,) = doc["summary"]["known_errors"]
    assert {k: entry[k] for k in ("key", "name", "max_concurrency", "requests", "affected")} == {
        "key": TE_KEY, "name": "TransferEncodingError", "max_concurrency": 512,
        "requests": 25, "affected": 25}
    assert entry["runs"] == ["con512.log:38"] and "signature" not in entry
    for setting in ("router_request_timeout_secs", "router_retry_*", "router_disable_retries",
                    "router_cb_*", "router_queue_timeout_secs", "router_max_concurrent_requests"):
        assert f"`{setting}`" in entry["hint"]
    assert doc["summary"]["runs_with_failures"][0]["known_errors"][TE_KEY]["requests"] == 25
    (line,) = bp.known_error_sentences(doc["summary"])
    assert line.startswith('<span style="color:red">**25 requests failed with '
                           "TransferEncodingError (400, not enough data for the transfer length "
                           "header) at concurrency 512**</span>: see router settings "
                           "`router_request_timeout_secs`")
    md = bp.document_markdown(doc)
    assert f"- {line}" in md
    assert '**25 FAILED**</span> (25 TransferEncodingError) |' in md
    (csv_row,) = csv.DictReader(io.StringIO(bp.to_csv(doc["runs"])))
    assert csv_row["Known_Errors"] == "transfer_encoding_400=25"
    assert csv_row["Failed_Requests"] == "25"


def test_known_errors_of_an_output_details_record():
    log = (TE / "con512.log").read_text()
    rec = json.loads((TE / "con512.jsonl").read_text())
    rec["errors"] = _printed_errors(log) + [""] * 999
    (row,) = bp.parse_jsonl(json.dumps(rec), "d.jsonl")
    assert row["failed_requests"] == 25 and row["requests_sent"] == 1024
    assert row["known_errors"] == {TE_KEY: {"requests": 25, "lines": 0}}
    assert bp.count_known_errors(["", "ConnectionResetError"]) == {}
    # a log printing no output.error= line (e.g. --backend sglang-oai) takes the record's
    quiet = "\n".join(x for x in log.splitlines() if not x.startswith("output.error="))
    (text_row,) = bp.parse_serving(quiet, "q.log")
    assert text_row["known_errors"] == {}
    assert bp.merge_record(text_row, row)["known_errors"] == row["known_errors"]


# ---------------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------------
def _interleave(log: str) -> str:
    out = []
    for i, line in enumerate(log.splitlines()):
        out.append(line)
        if i % 3 == 0:
            out.append('[2026-11-26 05:37:01 TP0] INFO:     127.0.0.1:5166 - "POST /generate '
                       'HTTP/1.1" 200 OK')
        if i % 5 == 0:
            out.append(" 56%|\x1b[32m█████▋    \x1b[0m| 9/16 [00:00<00:00, 16.38it/s]\r 60%|█")
    return "\n".join(out) + "\n"


NOISE = [
    ("interleaved log lines and tqdm frames", _interleave),
    ("ANSI colours", lambda s: "\n".join(f"\x1b[0;36m{x}\x1b[0m" for x in s.splitlines())),
    ("CRLF line ends", lambda s: s.replace("\n", "\r\n")),
    ("a prefix on every line", lambda s: "\n".join(f"proxy-1 | {x}" for x in s.splitlines())),
    ("shell comments", lambda s: "\n".join(f"# {x}" for x in s.splitlines())),
]


@pytest.mark.parametrize(("name", "mutate"), NOISE, ids=[n[0] for n in NOISE])
@pytest.mark.parametrize("source", ["rehearsal-0.5.2/con8.log",
                                    "transfer-encoding-0.5.2/con512.log",
                                    "sglang-0.5.x-late_jiewcc-notes.md",
                                    "sglang-0.3-era_dlora-results.md"])
def test_noise_does_not_change_the_numbers(name, mutate, source):
    clean = bp.parse_serving(text(source), "x")
    noisy = bp.parse_serving(mutate(text(source)), "x")
    drop = ("noise_lines", "source", "line", "closed")
    assert [{k: v for k, v in r.items() if k not in drop} for r in noisy] == \
        [{k: v for k, v in r.items() if k not in drop} for r in clean]


# ---------------------------------------------------------------------------------------------
# Truncation
# ---------------------------------------------------------------------------------------------
def test_recorded_truncated_block_names_where_it_stops():
    with pytest.raises(ValueError, match=r"truncated 'Serving Benchmark Result' block at "
                       r"x\.log:6: it stops after 'Median TTFT \(ms\):' \(line 24\)"):
        bp.parse_serving(text("sglang-0.4.0.post2_issue2805-truncated.log"), "x.log")


def _block_lines(log: str) -> tuple[list[str], int, int]:
    lines = log.splitlines()
    start = next(i for i, x in enumerate(lines) if "Serving Benchmark Result" in x)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("=" * 50))
    return lines, start, end


CUTS = list(range(1, 27))


@pytest.mark.parametrize("cut", CUTS)
def test_a_log_cut_inside_the_block_is_an_error(cut):
    lines, start, end = _block_lines((REC / "con8.log").read_text())
    cut_at = start + cut
    if cut_at >= end:
        pytest.skip("past the block")
    truncated = "\n".join(lines[:cut_at]) + "\n"
    missing_core = True
    try:
        rows = bp.parse_serving(truncated, "cut.log")
    except ValueError as exc:
        assert "truncated" in str(exc) and "cut.log" in str(exc)
    else:
        # only a cut after every core metric (the tail of the ITL section) is complete
        missing_core = False
        assert rows[0]["closed"] is False
        assert all(k in rows[0] for k in bp.REQUIRED)
    assert missing_core or cut >= 24


def test_a_cut_in_the_middle_of_a_value_line_is_an_error():
    lines, start, _end = _block_lines((REC / "con8.log").read_text())
    cut = "\n".join(lines[: start + 20]) + "\nMean ITL (ms):"
    with pytest.raises(ValueError, match=r"stops after 'Mean ITL \(ms\):'"):
        bp.parse_serving(cut, "x")


def test_next_run_before_the_closing_line_is_an_error():
    lines, start, _end = _block_lines((REC / "con8.log").read_text())
    log = "\n".join(lines[: start + 8]) + "\n" + (REC / "con2_tqdm.log").read_text()
    with pytest.raises(ValueError, match="truncated"):
        bp.parse_serving(log, "x")
    rows = bp.parse_serving(log, "x", strict=False)
    assert "truncated" in rows[0]["error"] and rows[1]["successful_requests"] == 16
    assert "truncated" in bp.to_markdown(rows).split("\n")[2]
    assert bp.summarize(rows)["truncated_blocks"] == 1


# ---------------------------------------------------------------------------------------------
# JSONL, GSM8K
# ---------------------------------------------------------------------------------------------
def test_jsonl_record_keys():
    rec = bp.parse_jsonl((REC / "failures.jsonl").read_text(), "f.jsonl")[0]
    assert rec["successful_requests"] == 9 and rec["isl"] == 33000 and rec["osl"] == 32
    assert rec["request_rate"] == math.inf and rec["max_concurrency"] == 4
    assert rec["total_throughput_derived"] is True  # 0.5.2 writes no total_throughput


@pytest.mark.parametrize(("content", "message"), [
    ('{"completed": 1, "duration": 1}\nnot json\n', r"f:2: not JSON"),
    ('{"foo": 1}\n', r"f:1: not a bench_serving result record"),
])
def test_bad_jsonl(content, message):
    with pytest.raises(ValueError, match=message):
        bp.parse_jsonl(content, "f")


GSM8K = [
    ("sglang-0.4.x_bbuf-shared-experts.md",
     [{"accuracy": 0.952, "invalid": 0.0, "latency_s": 69.547, "output_throughput": 1998.856}]),
    ("gsm8k-0.4.3.post2_bbuf-deepseek-v3.md",
     [{"accuracy": 0.951, "latency_s": 77.397, "output_throughput": 1809.790},
      {"accuracy": 0.948, "latency_s": 71.480, "output_throughput": 1920.021}]),
    ("rehearsal-0.5.2/gsm8k_stdout.log",
     [{"accuracy": 0.0, "invalid": 1.0, "latency_s": 2.226, "output_throughput": 555.827,
       "num_questions": 32, "num_shots": 5, "failed_requests": 0}]),
]


@pytest.mark.parametrize(("name", "expected"), GSM8K, ids=[g[0] for g in GSM8K])
def test_gsm8k_result_lines(name, expected):
    rows = bp.parse_gsm8k(text(name), name)
    assert [{k: v for k, v in r.items() if k not in ("source", "line")} for r in rows] == expected


# ---------------------------------------------------------------------------------------------
# Values, the sweep plan, tables, collect
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "kind", "expected"), [
    ("1,234", "int", 1234), ("300", "int", 300), ("71", "float", 71.0), ("-0.00", "float", -0.0),
    ("not set", "int_or_none", None), ("1024", "int_or_none", 1024), ("inf", "rate", math.inf),
    ("trace", "rate", "trace"), ("20.0", "rate", 20.0), ("sglang-oai", "str", "sglang-oai"),
])
def test_number(raw, kind, expected):
    assert bp.parse_number(raw, kind, "w") == expected


@pytest.mark.parametrize(("raw", "kind"), [("abc", "float"), ("1.5", "int"), ("", "int")])
def test_number_errors(raw, kind):
    with pytest.raises(ValueError, match="w: .* is not a number"):
        bp.parse_number(raw, kind, "w")


SEED = [8, 16, 32, 64, 128, 256, 512, 1024]
PRESETS = [{"name": "1k1k", "isl": 1024, "osl": 1024}, {"name": "8k1k", "isl": 8192, "osl": 1024}]


def test_sweep_plan_matches_the_seed():
    points = bp.sweep_points(SEED, PRESETS, iterations=2)
    assert len(points) == 2 * 2 * 8
    assert [p["num_prompts"] for p in points[:8]] == [16, 32, 64, 128, 256, 512, 1024, 2048]
    assert [(p["iteration"], p["preset"]) for p in points[::8]] == [
        (1, "1k1k"), (1, "8k1k"), (2, "1k1k"), (2, "8k1k")]
    assert points[7]["id"] == "1k1k/iter1_con1024"


@pytest.mark.parametrize(("con", "factor", "minimum", "expected"), [
    (1, 2, 16, 16), (8, 2, 16, 16), (9, 2, 16, 18), (512, 2, 16, 1024), (4, 3, 1, 12)])
def test_prompts_for(con, factor, minimum, expected):
    assert bp.prompts_for(con, factor, minimum) == expected


@pytest.mark.parametrize(("cons", "presets", "iterations", "message"), [
    ([], PRESETS, 1, "concurrency list is empty"),
    (SEED, [], 1, "preset list is empty"),
    ([0], PRESETS, 1, "not a positive integer"),
    ([2.5], PRESETS, 1, "not a positive integer"),
    ([True], PRESETS, 1, "not a positive integer"),
    (SEED, PRESETS, 0, "iterations must be >= 1"),
    (SEED, [{"name": "a", "isl": 1}], 1, "needs name, isl and osl"),
    (SEED, [{"name": "a b", "isl": 1, "osl": 1}], 1, "use letters"),
    (SEED, [PRESETS[0], PRESETS[0]], 1, "used twice"),
    (SEED, [{"name": "z", "isl": 0, "osl": 1}], 1, "must be >= 1"),
])
def test_sweep_plan_errors(cons, presets, iterations, message):
    with pytest.raises(ValueError, match=message):
        bp.sweep_points(cons, presets, iterations)


def test_csv_starts_with_the_seed_parser_columns():
    rows = serving("seed-e1_benchmark_fixture_CONCURRENCY.log")
    table = list(csv.reader(io.StringIO(bp.to_csv(rows))))
    assert table[0][:16] == [
        "Model", "xP_yD", "ISL", "OSL", "Concurrency", "Prompts_Group", "Total_Prompts",
        "Total_Input_Tokens", "Total_Output_Tokens", "Request_Throughput_req_s",
        "Input_Token_Throughput_tok_s", "Output_Token_Throughput_tok_s",
        "Total_Token_Throughput_tok_s", "Mean_E2E_Latency_ms", "Mean_TTFT_ms", "Mean_ITL_ms"]
    for needed in ("Successful_Requests", "Failed_Requests", "Duration_s", "Median_TTFT_ms",
                   "P99_TTFT_ms", "Median_ITL_ms", "P99_ITL_ms", "Mean_TPOT_ms",
                   "Median_TPOT_ms", "P99_TPOT_ms", "Median_E2E_Latency_ms",
                   "P99_E2E_Latency_ms"):
        assert needed in table[0]
    col = table[0].index("Output_Token_Throughput_tok_s")
    assert [float(r[col]) for r in table[1:]] == [r["output_throughput"] for r in rows]


def test_collect_pairs_logs_with_records_and_skips_foreign_jsonl():
    files = [(f"rehearsal-0.5.2/{p.name}", p.read_text()) for p in sorted(REC.iterdir())]
    files.append(("gsm8k/gsm8k_details.jsonl", '{"index": 0, "label": 3, "pred": null}\n'))
    doc = bp.collect(files)
    assert len(doc["runs"]) == 4 and len(doc["gsm8k"]) == 1
    assert all(r.get("jsonl_source") and r["mismatches"] == [] for r in doc["runs"])
    assert doc["summary"]["skipped_files"] == ["gsm8k/gsm8k_details.jsonl"]
    assert doc["summary"]["failed_requests"] == 3 and doc["summary"]["warnings"] == []
    # sorted by input/output length, preset, iteration, then concurrency
    assert [(r["preset"], r["max_concurrency"]) for r in doc["runs"]] == [
        ("tiny", 2), ("tiny", 8), ("mixed", 32), ("overlong", 4)]
    json.dumps(bp.json_safe(doc), allow_nan=False)  # strict JSON (request_rate inf)
    md = bp.document_markdown(doc)
    assert "3 failed request(s) of 108 in 4 run(s)" in md and "## GSM8K" in md


def test_collect_warns_when_records_do_not_pair():
    log = (REC / "con8.log").read_text()
    rec = (REC / "con8.jsonl").read_text()
    doc = bp.collect([("a.log", log), ("a.jsonl", rec + rec)])
    assert "2 JSONL record(s) for 1 result block(s)" in doc["summary"]["warnings"][0]


def test_zero_failures_sentence():
    doc = bp.collect([("a.log", (REC / "con8.log").read_text())])
    assert bp.failed_sentence(doc["summary"]) == (
        "**0 failed requests** of 16 in 1 run(s), concurrency up to 8.")


SWEEP = FIX / "rehearsal-0.5.2-sweep-1024"


@pytest.mark.parametrize("preset", ["s64-32", "s256-32"])
def test_recorded_1024_concurrency_runs_have_no_failed_request(preset):
    log = (SWEEP / f"{preset}_con1024.log").read_text()
    jsonl = (SWEEP / f"{preset}_con1024.jsonl").read_text()
    doc = bp.collect([(f"{preset}.log", log), (f"{preset}.jsonl", jsonl)])
    (row,) = doc["runs"]
    assert (row["max_concurrency"], row["num_prompts"], row["successful_requests"]) == (
        1024, 2048, 2048)
    assert row["failed_requests"] == 0 and row["error_lines"] == 0 and row["mismatches"] == []
    assert row["total_output_tokens"] == 2048 * 32
    assert "Successful requests:                     2048" in log


def test_recorded_sweep_table_has_16_runs_and_no_failure():
    rows = list(csv.DictReader((SWEEP / "bench.csv").open()))
    assert len(rows) == 16
    assert {r["Failed_Requests"] for r in rows} == {"0"}
    assert sorted({int(r["Concurrency"]) for r in rows}) == [8, 16, 32, 64, 128, 256, 512, 1024]
    assert all(r["Successful_Requests"] == r["Total_Prompts"] for r in rows)


# ---------------------------------------------------------------------------------------------
# The public API: what the module, the filters, pdbench and the tests may use
# ---------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[4]
PACKAGE = REPO / "plugins" / "module_utils" / "benchparse"


def test_the_package_exports_public_names_only():
    assert bp.__all__ and all(not name.startswith("_") for name in bp.__all__)
    assert all(hasattr(bp, name) for name in bp.__all__)
    assert {"collect", "parse_serving", "parse_jsonl", "parse_gsm8k", "to_csv",
            "document_markdown", "json_safe", "sweep_points"} <= set(bp.__all__)


def _imports(path: Path) -> list[ast.ImportFrom]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)]


def test_package_modules_import_each_other_relatively_and_publicly():
    for path in sorted(PACKAGE.glob("*.py")):
        for node in _imports(path):
            if node.module == "__future__":
                continue
            if node.level == 0:
                # only the standard library: no absolute import of the collection or benchparse
                assert not (node.module or "").startswith(("ansible", "benchparse")), path
                continue
            assert all(not a.name.startswith("_") for a in node.names), (path.name, node.module)


CONSUMERS = [
    REPO / "plugins" / "modules" / "bench_parse.py",
    REPO / "plugins" / "filter" / "bench.py",
    *sorted((REPO / "src" / "pdbench").glob("*.py")),
    *sorted((REPO / "tests" / "unit" / "bench").glob("*.py")),
]


@pytest.mark.parametrize("path", CONSUMERS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_consumers_use_only_public_names(path):
    source = path.read_text()
    assert "_bench_parse" not in source and "spec_from_file_location" not in source
    for node in _imports(path):
        if (node.module or "").split(".")[-1] == "benchparse":
            assert all(not a.name.startswith("_") for a in node.names), (path.name, node.module)


def test_this_file_uses_only_public_names():
    used = set(re.findall(r"\bbp\.(\w+)", Path(__file__).read_text())) - {"__all__"}
    assert used and all(not name.startswith("_") for name in used), sorted(used)


# ---------------------------------------------------------------------------------------------
# issue 15: unclosed blocks and unknown failed counts show in bench.md and in the summary
# ---------------------------------------------------------------------------------------------
def test_unclosed_block_and_unknown_failures_show_in_summary_and_bench_md():
    """Recorded: the second block of the bbuf notes has no closing line, no run says how many
    prompts it sent; "0 failed" must not be claimed."""
    name = "sglang-0.4.x_bbuf-shared-experts.md"
    doc = bp.collect([(name, text(name))])
    summary = doc["summary"]
    assert summary["unclosed_blocks"] == 1
    assert summary["unclosed_runs"] == [f"{name}:50"]
    assert summary["runs_with_unknown_failures"] == 3
    assert len(summary["unknown_failure_runs"]) == 3
    sentence = bp.failed_sentence(summary)
    assert "0 failed" not in sentence
    assert "failed requests unknown for 3 of 3 run(s)" in sentence
    assert f"1 result block(s) without the closing ===== line ({name}:50)" in sentence
    md = bp.document_markdown(doc)
    assert sentence in md
    assert "| unknown (block not closed) |" in md
    assert "| ? |" not in md


def test_failed_and_unknown_runs_together_say_both():
    rows = [serving("vllm_tt-inference-server-pr2119-failed.md")[0],
            serving("sglang-0.3-era_dlora-results.md")[0]]
    sentence = bp.failed_sentence(bp.summarize(rows))
    assert "1 failed request(s)" in sentence
    assert "failed requests unknown for 1 run(s)" in sentence


def test_some_runs_unknown_is_not_zero_failed():
    rows = [serving("rehearsal-0.5.2/con8.log")[0], serving("sglang-0.3-era_dlora-results.md")[0]]
    sentence = bp.failed_sentence(bp.summarize(rows))
    assert sentence.startswith("failed requests unknown for 1 of 2 run(s) (none in the other 1)")
    assert "0 failed" not in sentence


def test_zero_failed_only_when_every_run_reported_and_blocks_closed():
    summary = bp.summarize(serving("rehearsal-0.5.2/con8.log"))
    assert (summary["unclosed_blocks"], summary["runs_with_unknown_failures"]) == (0, 0)
    assert bp.failed_sentence(summary).startswith("**0 failed requests**")
