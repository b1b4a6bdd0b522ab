"""The drill report's figures, on request logs recorded by real drills (tests/fixtures/drill)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _drill

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "drill"


def _load(name: str) -> tuple[list[dict], dict]:
    text = gzip.decompress((FIXTURES / f"{name}.requests.jsonl.gz").read_bytes()).decode()
    meta = json.loads((FIXTURES / f"{name}.marks.json").read_text())
    return _drill.parse_log(text, name), meta["marks"]


def test_kill_decode_the_service_is_down_until_the_restore() -> None:
    records, marks = _load("kill_decode")
    s = _drill.summarize(records, marks, "kill_decode", "decode-1")
    assert (s["sent"], s["failed"], s["wrong"]) == (1463, 344, 0)
    # The router refused at once once it knew the only decode was gone ...
    assert s["refused_by_router"] == 336
    # ... and only the requests in flight at the kill reached it (they hung to the 10 s timeout).
    assert s["router_kept_sending_s"] < 2.0
    assert s["first_good_after_healthy_s"] == pytest.approx(0.502, abs=0.001)
    assert 25 < s["service_back_after_s"] < 35
    assert s["latency_p99_steady_s"] < 1.0


def test_kv_link_down_fails_only_the_pairs_over_the_cut_path() -> None:
    records, marks = _load("kv_link_down")
    s = _drill.summarize(records, marks, "kv_link_down", "decode-1")
    assert (s["sent"], s["failed"], s["wrong"], s["refused_by_router"]) == (909, 16, 0, 0)
    assert not s["service_down"]  # the other prefill kept answering
    assert 5 < s["router_kept_sending_s"] < s["fault_s"]
    assert all(e.startswith("TimeoutError") for e in s["errors"])


def test_a_changed_answer_counts_as_wrong() -> None:
    records, marks = _load("kv_link_down")
    late = next(r for r in records if r["ok"] and r["t0"] > float(marks["healthy"]))
    late["text"] = late["text"] + " (corrupt)"
    assert _drill.summarize(records, marks)["wrong"] == 1


def test_nothing_failed_means_zero_times() -> None:
    records = [{"t0": t, "t1": t + 0.1, "ok": True, "prompt": "p", "text": "x"}
               for t in range(100, 140)]
    s = _drill.summarize(records, {"inject": 110, "restore": 120, "healthy": 121})
    assert (s["failed"], s["router_kept_sending_s"], s["service_back_after_s"]) == (0, 0.0, 0.0)
    assert s["first_good_after_healthy_s"] is None and not s["service_down"]


def test_bad_lines_and_marks_name_the_problem() -> None:
    with pytest.raises(_drill.DrillError, match=r"requests.jsonl line 2: not a drill request"):
        _drill.parse_log('{"t0": 1, "t1": 2}\n{"t0": "x"}\n', "requests.jsonl")
    with pytest.raises(_drill.DrillError, match="drill marks need inject, restore, healthy"):
        _drill.summarize([], {"inject": 1})


def test_report_shows_the_figures_and_what_the_operator_saw() -> None:
    records, marks = _load("kill_decode")
    s = {**_drill.summarize(records, marks, "kill_decode", "decode-1"), "fault": "SIGKILL"}
    md = _drill.markdown(s, {"workers": [{"worker_type": "decode", "url": "http://d:30002",
                                          "is_healthy": False}]}, ["last line"])
    assert md.startswith("# Drill kill_decode on decode-1")
    assert "| failed | 344 |" in md and "| wrong answers | 0 |" in md
    assert "- decode http://d:30002: UNHEALTHY" in md and "last line" in md
    assert "(no listing: the router did not answer)" in _drill.markdown(s, None, [])
