"""Runner events -> progress lines and the run record (event shapes as ansible-runner emits)."""

from __future__ import annotations

import pytest

from pdctl.events import Recorder, failure_message, format_event, task_label, waiting

PLAY = "Deploy workers"


def ev(kind: str, **data):
    return {"event": kind, "event_data": {"play": PLAY, **data}, "created": "2026-11-26T05:00:00"}


def task_start(name: str, uuid: str, role: str | None = None):
    return ev("playbook_on_task_start", task=name, task_uuid=uuid, role=role,
              task_action="ansible.builtin.command")


def result(kind: str, host: str, name: str, uuid: str, res: dict, role: str | None = None,
           **extra):
    return ev(kind, host=host, task=name, task_uuid=uuid, role=role, res=res,
              task_action="ansible.builtin.command", resolved_action="ansible.builtin.command",
              start="2026-11-26T05:00:00.000000+00:00", end="2026-11-26T05:00:01.500000+00:00",
              **extra)


LINES = [
    (ev("playbook_on_play_start", name=PLAY), "== PLAY Deploy workers"),
    (result("runner_on_ok", "prefill-1", "Start container", "t1", {"changed": True},
            role="inferops.disagg.sglang_worker"),
     "  changed     prefill-1 | sglang_worker : Start container (1.5s)"),
    (result("runner_on_ok", "decode-1", "Start container", "t1", {"changed": False}),
     "  ok          decode-1 | Start container (1.5s)"),
    (result("runner_on_failed", "decode-1", "Check health", "t2",
            {"msg": "decode-1 never answered /health"}),
     "  FAILED      decode-1 | Check health (1.5s): decode-1 never answered /health"),
    (result("runner_on_failed", "decode-1", "Probe", "t2", {"msg": "nope"}, ignore_errors=True),
     "  failed (ignored) decode-1 | Probe (1.5s): nope"),
    (result("runner_on_unreachable", "ghost", "Ping", "t3",
            {"msg": "Failed to connect to the host via ssh: Connection refused",
             "unreachable": True}),
     "  UNREACHABLE ghost | Ping (1.5s): Failed to connect to the host via ssh: "
     "Connection refused"),
    (ev("runner_retry", host="prefill-2", task="Wait for prefill /health",
        role="inferops.disagg.sglang_worker", res={"attempts": 3, "retries": 61}),
     "  waiting     prefill-2 | waiting for prefill /health (attempt 3/61)"),
    (ev("runner_retry", host="proxy-1", task="Router readiness", res={"attempts": 1,
                                                                      "retries": 30}),
     "  waiting     proxy-1 | waiting for Router readiness (attempt 1/30)"),
    (result("runner_on_skipped", "decode-1", "Only prefill", "t4", {}), None),
    (ev("runner_on_ok", host="p1", task="Deploy the worker", res={"changed": False},
        resolved_action="ansible.builtin.include_role"), None),
    (task_start("Start container", "t1"), None),
    ({"event": "verbose", "stdout": "ERROR! the playbook: x.yml could not be found"},
     "ERROR! the playbook: x.yml could not be found"),
    ({"event": "verbose", "stdout": "ok: [host]"}, None),
    ({"event": "warning", "stdout": "[WARNING]: Invalid characters were found in group names"},
     "[WARNING]: Invalid characters were found in group names"),
]


@pytest.mark.parametrize(("event", "line"), LINES)
def test_format_event(event, line):
    assert format_event(event) == line


@pytest.mark.parametrize(("task", "phrase"), [
    ("Wait for prefill /health", "waiting for prefill /health"),
    ("sglang_worker : Wait for /health of pd-prefill-1", "waiting for /health of pd-prefill-1"),
    ("router : Wait until the router lists exactly 2 prefill and 1 decode workers, all healthy",
     "waiting until the router lists exactly 2 prefill and 1 decode workers, all healthy"),
    ("waiting until the router is ready", "waiting until the router is ready"),
    ("Poll for etcd health", "waiting for etcd health"),
    ("Router readiness", "waiting for Router readiness"),
    ("Wait for", "waiting for Wait for"),
])
def test_waiting(task, phrase):
    assert waiting(task) == phrase


def test_task_label_role_and_unnamed():
    assert task_label({"task": "Start", "role": "inferops.disagg.router"}) == "router : Start"
    assert task_label({"task": "", "task_action": "ansible.builtin.uri"}) == "ansible.builtin.uri"
    assert task_label({"task": "router : Start", "role": "router"}) == "router : Start"


MESSAGES = [
    ({"msg": "boom"}, "boom"),
    ({"msg": ["a", "b"]}, "a; b"),
    ({"msg": "non-zero return code", "rc": 125, "stderr": "docker: Error response from daemon:"
      " pull access denied\nsee 'docker run --help'."},
     "non-zero return code | rc=125 | stderr: docker: Error response from daemon: pull access "
     "denied\nsee 'docker run --help'."),
    ({"msg": "non-zero return code", "rc": 1, "stdout": "l1\nl2\nl3\nl4\nl5\nl6", "stderr": ""},
     "non-zero return code | rc=1 | stdout: l2\nl3\nl4\nl5\nl6"),
    ({"msg": "Status code was 503 and not [200]: HTTP Error 503", "attempts": 61,
      "status": 503}, "Status code was 503 and not [200]: HTTP Error 503 | after 61 attempts"),
    ({"msg": "One or more items failed", "results": [
        {"item": "pd-prefill-1", "failed": False},
        {"item": "pd-decode-1", "failed": True, "msg": "container exited 137"}]},
     "One or more items failed | item pd-decode-1: container exited 137"),
    ({"exception": "Traceback...\n  File x\nKeyError: 'url'"}, "KeyError: 'url'"),
    ({}, "failed (no message)"),
    ({"msg": "\x1b[0;31mred\x1b[0m"}, "red"),
]


@pytest.mark.parametrize(("res", "message"), MESSAGES)
def test_failure_message(res, message):
    assert failure_message(res) == message


def test_failure_message_is_bounded():
    assert len(failure_message({"msg": "x" * 10000})) == 2000


def _run(recorder: Recorder, events):
    for event in events:
        recorder.feed(event)
    return recorder


def test_recorder_counts_failures_timings_and_stats():
    rec = _run(Recorder(), [
        ev("playbook_on_play_start", name=PLAY),
        task_start("Start container", "t1", role="inferops.disagg.sglang_worker"),
        ev("runner_on_start", host="prefill-1", task="Start container"),
        ev("runner_on_start", host="decode-1", task="Start container"),
        result("runner_on_ok", "prefill-1", "Start container", "t1", {"changed": True},
               role="inferops.disagg.sglang_worker"),
        result("runner_on_failed", "decode-1", "Start container", "t1",
               {"msg": "image not found"}, role="inferops.disagg.sglang_worker"),
        ev("playbook_on_stats", ok={"prefill-1": 1}, changed={"prefill-1": 1},
           failures={"decode-1": 1}, dark={}, skipped={}, rescued={}, ignored={},
           processed={"prefill-1": 1, "decode-1": 1},
           artifact_data={"disagg_endpoints": {"router": "http://p:30000"}}),
    ])
    stats = rec.host_stats()
    assert stats["decode-1"].failed == 1 and stats["decode-1"].ok == 0
    assert stats["prefill-1"].changed == 1
    [failure] = rec.failures
    assert (failure.host, failure.task, failure.role, failure.message, failure.play) == (
        "decode-1", "sglang_worker : Start container", "sglang_worker", "image not found", PLAY)
    assert rec.failed_roles() == {"sglang_worker"}
    [timing] = rec.tasks.values()
    assert timing.hosts == {"prefill-1": 1.5, "decode-1": 1.5}
    assert rec.artifact_data == {"disagg_endpoints": {"router": "http://p:30000"}}
    assert rec.running == set()


def test_recorder_without_recap_counts_results():
    rec = _run(Recorder(), [
        task_start("A", "t1"),
        result("runner_on_ok", "h1", "A", "t1", {"changed": True}),
        result("runner_on_skipped", "h2", "A", "t1", {}),
        result("runner_on_unreachable", "h3", "A", "t1", {"msg": "gone"}),
        result("runner_on_failed", "h2", "A", "t1", {"msg": "x"}, ignore_errors=True),
    ])
    stats = rec.host_stats()
    assert (stats["h1"].ok, stats["h1"].changed) == (1, 1)
    assert (stats["h2"].skipped, stats["h2"].ignored, stats["h2"].failed) == (1, 1, 0)
    assert stats["h3"].unreachable == 1
    assert [f.unreachable for f in rec.failures] == [True]


def test_recorder_tracks_running_and_retries():
    rec = _run(Recorder(), [
        task_start("Wait for /health", "t1"),
        ev("runner_on_start", host="p1", task="Wait for /health"),
        ev("runner_on_start", host="p2", task="Wait for /health"),
        ev("runner_retry", host="p1", task="Wait for /health",
           res={"attempts": 4, "retries": 10}),
    ])
    assert rec.current_task == "Wait for /health"
    assert rec.running == {"p1", "p2"}
    assert (rec.retries["p1"].attempt, rec.retries["p1"].total) == (4, 10)
    rec.feed(result("runner_on_ok", "p1", "Wait for /health", "t1", {"attempts": 5}))
    assert rec.running == {"p2"} and rec.retries == {}


def test_recorder_inventory_reason_joins_the_error():
    """Ansible's own error says only 'failed to parse'; the plugin's warning says why."""
    rec = _run(Recorder(), [
        {"event": "verbose", "stdout": "[WARNING]: Failed to parse inventory with 'auto' plugin: "
                                       "allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5"},
        {"event": "verbose", "stdout": "[WARNING]: Failed to parse inventory with 'yaml' plugin: "
                                       "Plugin configuration YAML file, not YAML inventory"},
        {"event": "verbose", "stdout": "[ERROR]: Completely failed to parse inventory source "
                                       "/x/a.slurm.yml"},
    ])
    assert rec.errors == ["[ERROR]: Completely failed to parse inventory source /x/a.slurm.yml: "
                          "allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5"]
