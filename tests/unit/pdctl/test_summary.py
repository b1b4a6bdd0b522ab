"""Exit-code mapping, the JSON summary and the summary table."""

from __future__ import annotations

import json

import pytest

from pdctl import exitcodes
from pdctl.events import Recorder
from pdctl.summary import build_summary, render_summary

EXIT_CODES = [
    ("deploy", "successful", set(), 0),
    ("deploy", "failed", set(), 3),
    ("deploy", "failed", {"sglang_worker"}, 3),
    ("deploy", "failed", {"preflight"}, 2),  # deploy.yml runs preflight first
    ("deploy", "timeout", set(), 3),
    ("preflight", "failed", set(), 2),
    ("bench", "failed", set(), 4),
    ("bench", "failed", {"benchmark"}, 4),
    ("down", "failed", set(), 1),
    ("logs", "failed", set(), 1),
    ("deploy", "canceled", set(), 1),
    ("deploy", "error", set(), 1),
    ("preflight", "successful", set(), 0),
]


@pytest.mark.parametrize(("command", "status", "roles", "code"), EXIT_CODES)
def test_exit_code_for(command, status, roles, code):
    assert exitcodes.exit_code_for(command, status, roles) == code


def _recorder() -> Recorder:
    rec = Recorder()
    for event in [
        {"event": "playbook_on_task_start", "event_data": {"task": "Start", "task_uuid": "t1",
                                                           "role": "inferops.disagg.router"}},
        {"event": "runner_on_ok", "event_data": {"host": "proxy-1", "task": "Start",
                                                 "task_uuid": "t1", "duration": 2.25,
                                                 "res": {"changed": True}}},
        {"event": "runner_on_failed", "event_data": {"host": "decode-1", "task": "Start",
                                                     "task_uuid": "t1", "duration": 4.0,
                                                     "role": "inferops.disagg.router",
                                                     "res": {"msg": "no /readiness\nline 2"}}},
        {"event": "playbook_on_stats", "event_data": {
            "ok": {"proxy-1": 1}, "changed": {"proxy-1": 1}, "failures": {"decode-1": 1},
            "dark": {}, "skipped": {}, "rescued": {}, "ignored": {},
            "processed": {"proxy-1": 1, "decode-1": 1}}},
    ]:
        rec.feed(event)
    return rec


def _summary(rec: Recorder, code: int, **kw):
    base = dict(command="deploy", status="failed" if code else "successful", rc=2 if code else 0,
                exit_code=code, run_id="r1", run_dir="/runs/r1", inventory="/inv",
                playbook="/pb.yml", started="t0", finished="t1", duration_s=12.5)
    return build_summary(rec, **{**base, **kw})


def test_summary_json_names_host_task_message():
    doc = _summary(_recorder(), 3, endpoints={"router": "http://proxy-1:30000"})
    json.dumps(doc)  # serialisable
    assert doc["ok"] is False and doc["exit_code"] == 3 and doc["exit_meaning"] == "deploy failed"
    assert doc["hosts"]["decode-1"] == {"ok": 0, "changed": 0, "failed": 1, "unreachable": 0,
                                        "skipped": 0, "rescued": 0, "ignored": 0}
    assert doc["failures"] == [{"host": "decode-1", "task": "router : Start",
                                "message": "no /readiness\nline 2", "role": "router",
                                "action": None, "play": None, "unreachable": False}]
    assert doc["timings"]["total_s"] == 12.5
    assert doc["timings"]["slowest_tasks"][0] == {
        "task": "router : Start", "role": "router", "play": None, "duration_s": 4.0,
        "slowest_host": "decode-1"}
    assert doc["endpoints"] == {"router": "http://proxy-1:30000"}


def test_summary_failure_outside_tasks_uses_errors_or_error():
    rec = Recorder()
    rec.feed({"event": "verbose", "stdout": "ERROR! couldn't resolve module/action 'x.y.z'"})
    doc = _summary(rec, 3)
    assert doc["failures"] == [{"host": None, "task": None,
                                "message": "ERROR! couldn't resolve module/action 'x.y.z'",
                                "role": None, "action": None, "play": None,
                                "unreachable": False}]
    doc = _summary(Recorder(), 1, status="timeout", error="timed out after 5s while running "
                                                          "'Sleep' on proxy-1")
    assert doc["failures"][0]["message"].startswith("timed out after 5s")


def test_summary_ok_run_has_no_failures():
    doc = _summary(Recorder(), 0)
    assert doc["ok"] is True and doc["failures"] == [] and doc["exit_meaning"] == "ok"


def test_render_summary_table():
    text = render_summary(_summary(_recorder(), 3, endpoints={
        "router": "http://proxy-1:30000", "routers": [{"host": "proxy-1", "url": "x"}],
        "prefill": [{"host": "prefill-1", "url": "http://prefill-1:30001"}], "decode": []}))
    lines = text.splitlines()
    assert lines[0] == "== SUMMARY deploy: deploy failed (exit 3, 12.5s)"
    assert lines[1].split() == ["host", "ok", "changed", "failed", "unreachable", "skipped",
                                "rescued", "ignored"]
    assert lines[3].split() == ["decode-1", "0", "0", "1", "0", "0", "0", "0"]
    assert "  decode-1 | router : Start: no /readiness" in lines
    assert "      line 2" in lines
    assert "  router: http://proxy-1:30000" in lines
    assert "  prefill: http://prefill-1:30001 (prefill-1)" in lines
    assert not any(line.startswith(("  decode:", "  routers:")) for line in lines)
    assert "      4.0s  router : Start" in lines
    assert lines[-1] == "run dir: /runs/r1"


def test_rescued_failures_of_a_successful_run_are_recovered():
    doc = _summary(_recorder(), 0)
    assert doc["failures"] == []
    assert [f["host"] for f in doc["recovered"]] == ["decode-1"]
