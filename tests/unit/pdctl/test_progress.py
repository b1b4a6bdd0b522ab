"""Progress lines, the wait bar, heartbeats, and the log file."""

from __future__ import annotations

import io
import time

import pytest

from pdctl.events import Recorder
from pdctl.progress import Progress, bar, status_line


@pytest.mark.parametrize(("done", "total", "width", "text"), [
    (0, 10, 10, "[----------]"), (5, 10, 10, "[#####-----]"), (10, 10, 10, "[##########]"),
    (12, 10, 4, "[####]"), (3, 0, 4, "[----]"), (1, 61, 20, "[--------------------]"),
    (31, 61, 20, "[##########----------]"),
])
def test_bar(done, total, width, text):
    assert bar(done, total, width) == text


def _feed(rec: Recorder, progress: Progress | None, *events):
    for event in events:
        rec.feed(event)
        if progress:
            progress.event(event)


def task(name):
    return {"event": "playbook_on_task_start", "event_data": {"task": name, "task_uuid": name}}


def retry(host, attempt, total=61):
    return {"event": "runner_retry", "event_data": {
        "host": host, "task": "Wait for prefill /health", "res": {"attempts": attempt,
                                                                  "retries": total}}}


def test_status_line_prefers_the_wait():
    rec = Recorder()
    _feed(rec, None, task("Wait for prefill /health"),
          {"event": "runner_on_start", "event_data": {"host": "p1"}},
          {"event": "runner_on_start", "event_data": {"host": "p2"}})
    assert status_line(rec, 3.2) == "waiting for prefill /health on p1, p2 (3s)"
    _feed(rec, None, retry("p1", 30), retry("p2", 12))
    assert status_line(rec, 61) == ("waiting for prefill /health [##########----------] "
                                    "attempt 30/61 on p1 +1 (61s)")


def test_log_mode_thins_retry_lines_but_logs_all(tmp_path):
    out = io.StringIO()
    rec = Recorder()
    progress = Progress(rec, out, tty=False, log_path=tmp_path / "pdctl.log", retry_every_s=60)
    _feed(rec, progress, task("Wait for prefill /health"), retry("p1", 1), retry("p1", 2),
          retry("p2", 1))
    progress.stop()
    assert out.getvalue().splitlines() == [
        "  waiting     p1 | waiting for prefill /health (attempt 1/61)",
        "  waiting     p2 | waiting for prefill /health (attempt 1/61)"]
    logged = (tmp_path / "pdctl.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in logged] == [
        "  waiting     p1 | waiting for prefill /health (attempt 1/61)",
        "  waiting     p1 | waiting for prefill /health (attempt 2/61)",
        "  waiting     p2 | waiting for prefill /health (attempt 1/61)"]


def test_heartbeat_in_log_mode():
    out = io.StringIO()
    rec = Recorder()
    progress = Progress(rec, out, tty=False, heartbeat_s=0.5)
    _feed(rec, progress, task("Pull image"),
          {"event": "runner_on_start", "event_data": {"host": "p1"}})
    progress.start()
    time.sleep(2.2)
    progress.stop()
    beats = [ln for ln in out.getvalue().splitlines() if ln.startswith("  ... still running")]
    assert beats and beats[0].startswith("  ... still running Pull image on p1 (")


def test_status_line_of_a_plain_task():
    rec = Recorder()
    _feed(rec, None, task("sglang_worker : Run pd-prefill-1"),
          *({"event": "runner_on_start", "event_data": {"host": h}} for h in "abcd"))
    assert status_line(rec, 9) == "running sglang_worker : Run pd-prefill-1 on a, b, c … (9s)"


def test_tty_redraws_status_line_and_clears_it():
    out = io.StringIO()
    rec = Recorder()
    progress = Progress(rec, out, tty=True)
    _feed(rec, progress, task("Wait for prefill /health"), retry("p1", 7, 10))
    progress.start()
    time.sleep(0.7)
    progress.line("== PLAY next")
    progress.stop()
    text = out.getvalue()
    assert "\r\x1b[2K" in text
    assert "waiting for prefill /health [##############------] attempt 7/10 on p1" in text
    # the permanent line is printed on a cleared line, and the status line is cleared at stop
    assert "\r\x1b[2K== PLAY next\n" in text


def test_quiet_prints_nothing_but_logs(tmp_path):
    out = io.StringIO()
    progress = Progress(Recorder(), out, tty=False, log_path=tmp_path / "l", quiet=True)
    progress.line("hello")
    progress.stop()
    assert out.getvalue() == "" and "hello" in (tmp_path / "l").read_text()
