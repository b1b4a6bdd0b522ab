"""ansible-runner events -> progress lines and a run record (per-host counts, failures, timings).

Pure functions and a plain accumulator: no I/O here, so every rule is unit-tested on event dicts
shaped like the ones ``ansible_runner``'s display callback emits
(``playbook_on_task_start``, ``runner_on_ok``/``_failed``/``_unreachable``/``_skipped``,
``runner_retry``, ``playbook_on_stats``, ``verbose``, …).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

Event = dict[str, Any]

# Longest failure message kept (the run dir has the full output).
_MAX_MESSAGE = 2000
_STATUS_WORD = {
    "runner_on_ok": "ok",
    "runner_on_failed": "FAILED",
    "runner_on_unreachable": "UNREACHABLE",
    "runner_on_skipped": "skipped",
}
# Results of these actions only structure the play: no progress line for them.
_SILENT_ACTIONS = frozenset({"include_role", "include_tasks", "import_role", "import_tasks",
                             "meta"})
_WAIT_PREFIX = re.compile(r"^\s*(?:wait(?:ing)?|poll(?:ing)?)\s+(?P<word>for|until|on)\s+",
                          re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_INVENTORY_WARNING = re.compile(r"Failed to parse inventory with '([^']+)' plugin: (.*)")
# What the generic plugins say about a file that is not theirs: never the cause.
_NOT_MINE = ("Plugin configuration YAML file, not YAML inventory", "Invalid host pattern",
             "could not be verified by inventory plugin", "is not a valid YAML inventory",
             "No inventory was parsed")


def short_role(role: str | None) -> str:
    """``inferops.disagg.sglang_worker`` -> ``sglang_worker``; ``None`` -> ``""``."""
    return (role or "").rsplit(".", 1)[-1]


def task_label(data: dict[str, Any]) -> str:
    """The task as Ansible prints it: ``role : name`` (or the action when unnamed)."""
    name = str(data.get("task") or data.get("task_action") or data.get("resolved_action") or "?")
    role = short_role(data.get("role"))
    return f"{role} : {name}" if role and not name.startswith(f"{role} : ") else name


def is_wait(task: str) -> bool:
    """Whether a task's name says it waits (``Wait for …``, ``Poll until …``)."""
    return bool(_WAIT_PREFIX.match(task.split(" : ", 1)[-1]))


def _silent(data: dict[str, Any]) -> bool:
    action = str(data.get("resolved_action") or data.get("task_action") or "")
    return action.rsplit(".", 1)[-1] in _SILENT_ACTIONS


def waiting(task: str) -> str:
    """How to say a task waits: ``Wait for prefill /health`` -> ``waiting for prefill /health``,
    ``router : Wait until the router is ready`` -> ``waiting until the router is ready``,
    ``Router readiness`` -> ``waiting for Router readiness``."""
    name = task.split(" : ", 1)[-1]
    match = _WAIT_PREFIX.match(name)
    if not match or not name[match.end():].strip():
        return f"waiting for {task}"
    word = "until" if match.group("word").lower() == "until" else "for"
    return f"waiting {word} {name[match.end():].strip()}"


def _clean(text: str) -> str:
    return _ANSI.sub("", text).strip()


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value, sort_keys=True, default=str)


def _tail(text: str, lines: int = 5) -> str:
    kept = [ln for ln in _clean(text).splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def failure_message(res: dict[str, Any] | None) -> str:
    """A one-stop explanation of a failed (or unreachable) task result.

    ``msg`` first (an ``assert``'s ``fail_msg``, a module's error), then the rc and the last
    lines of stderr (or stdout when stderr is empty) for commands, the failed items of a loop,
    the attempts of an ``until`` loop, and the last line of a module traceback.
    """
    res = res or {}
    parts: list[str] = []
    msg = res.get("msg")
    if msg not in (None, ""):
        parts.append(_clean(_as_text(msg)))
    for item in res.get("results") or []:
        if isinstance(item, dict) and (item.get("failed") or item.get("unreachable")):
            label = item.get("item")
            label = label if isinstance(label, str) else json.dumps(label, default=str)
            parts.append(f"item {label}: {failure_message(item)}")
    rc = res.get("rc")
    if rc not in (None, 0) and not any(f"rc={rc}" in p for p in parts):
        parts.append(f"rc={rc}")
    stderr = res.get("stderr") or ""
    stdout = res.get("stdout") or ""
    if isinstance(stderr, str) and stderr.strip():
        parts.append("stderr: " + _tail(stderr))
    elif isinstance(stdout, str) and stdout.strip() and rc not in (None, 0):
        parts.append("stdout: " + _tail(stdout))
    if res.get("attempts") and res.get("attempts", 0) > 1:
        parts.append(f"after {res['attempts']} attempts")
    exception = res.get("exception")
    if isinstance(exception, str) and exception.strip() and not parts:
        parts.append(_tail(exception, 1))
    text = " | ".join(p for p in parts if p) or "failed (no message)"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _duration(data: dict[str, Any]) -> float | None:
    """Seconds a host spent on a task: the callback's ``duration``, else ``end - start``."""
    duration = data.get("duration")
    if isinstance(duration, (int, float)):
        return float(duration)
    start, end = data.get("start"), data.get("end")
    if start and end:
        try:
            return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        except (TypeError, ValueError):
            return None
    return None


def format_event(event: Event) -> str | None:
    """The progress line for one runner event, or ``None`` when it prints nothing.

    One line per play, one per host result of every task (``ok``/``changed``/``FAILED``/
    ``UNREACHABLE``; skipped results are silent), one per retry of an ``until`` loop
    (``waiting for X (attempt n/N)``), the error lines Ansible prints outside tasks.
    """
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    if kind == "playbook_on_play_start":
        return f"== PLAY {data.get('play') or data.get('name') or data.get('play_pattern', '')}"
    if kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
        res = data.get("res") or {}
        if kind == "runner_on_ok" and _silent(data):
            return None
        word = _STATUS_WORD[kind]
        if kind == "runner_on_ok" and res.get("changed"):
            word = "changed"
        if kind == "runner_on_failed" and data.get("ignore_errors"):
            word = "failed (ignored)"
        took = _duration(data)
        line = f"  {word:<11} {data.get('host', '?')} | {task_label(data)}"
        if took is not None:
            line += f" ({took:.1f}s)"
        if kind != "runner_on_ok":
            line += f": {failure_message(res).splitlines()[0]}"
        return line
    if kind == "runner_retry":
        res = data.get("res") or {}
        attempt, total = res.get("attempts", "?"), res.get("retries", "?")
        return (f"  {'waiting':<11} {data.get('host', '?')} | "
                f"{waiting(task_label(data))} (attempt {attempt}/{total})")
    if kind == "runner_on_async_poll":
        return (f"  {'waiting':<11} {data.get('host', '?')} | "
                f"{waiting(task_label(data))} (async job)")
    if kind == "playbook_on_no_hosts_matched":
        return "  no hosts matched this play"
    if kind in ("verbose", "error", "warning") and event.get("stdout"):
        text = _clean(str(event["stdout"]))
        if kind == "warning" or text.startswith(("ERROR", "[ERROR]", "[WARNING]", "WARNING")):
            return text
    return None


@dataclass
class HostStats:
    """Per-host counts, as in Ansible's PLAY RECAP (``dark`` is ``unreachable``)."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass
class Failure:
    """A failed or unreachable host result (or, with ``host=None``, an error outside tasks)."""

    host: str | None
    task: str | None
    message: str
    role: str | None = None
    action: str | None = None
    play: str | None = None
    unreachable: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass
class TaskTiming:
    """Wall time of one task: when it started and how long each host took."""

    task: str
    role: str | None
    play: str | None
    started: str | None
    hosts: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """The slowest host's time (the task's share of the run in a linear strategy)."""
        return max(self.hosts.values(), default=0.0)


@dataclass
class Retry:
    """The latest retry of an ``until`` loop on one host."""

    host: str
    task: str
    attempt: int
    total: int


_STATS_KEYS = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
               "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


class Recorder:
    """Accumulates everything pdctl reports from the stream of runner events."""

    def __init__(self) -> None:
        self.hosts: dict[str, HostStats] = {}
        self.failures: list[Failure] = []
        self.tasks: dict[str, TaskTiming] = {}
        self.plays: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.inventory_reasons: list[str] = []  # why inventory plugins refused a source
        self.artifact_data: dict[str, Any] = {}
        self.stats_seen = False
        self.current_task: str | None = None
        self.running: set[str] = set()  # hosts still busy with the current task
        self.roles_ran: set[str] = set()  # roles (short names) with a non-skipped host result
        self.retries: dict[str, Retry] = {}  # host -> latest retry of the current task
        self._play: str | None = None
        self._counted: dict[str, HostStats] = {}

    def _host(self, name: str, table: dict[str, HostStats]) -> HostStats:
        return table.setdefault(name, HostStats())

    def feed(self, event: Event) -> None:
        """Take one event into the record."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self._play = data.get("play") or data.get("name")
            self.plays.append({"name": self._play, "started": event.get("created")})
        elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            label = task_label(data)
            self.current_task = label
            self.running.clear()
            self.retries.clear()
            key = data.get("task_uuid") or f"{len(self.tasks)}:{label}"
            self.tasks.setdefault(key, TaskTiming(label, short_role(data.get("role")) or None,
                                                  self._play, event.get("created")))
        elif kind == "runner_on_start":
            self.running.add(str(data.get("host")))
        elif kind == "runner_retry":
            res = data.get("res") or {}
            host = str(data.get("host"))
            self.retries[host] = Retry(host, task_label(data), int(res.get("attempts") or 0),
                                       int(res.get("retries") or 0))
        elif kind in _STATUS_WORD:
            self._result(kind, data)
        elif kind == "playbook_on_stats":
            self._stats(data)
        elif kind in ("verbose", "error", "warning") and event.get("stdout"):
            for text in _clean(str(event["stdout"])).splitlines():
                self._message(kind, text.strip())

    def _message(self, kind: str, text: str) -> None:
        """Keep Ansible's errors, and the inventory plugins' reasons for refusing a source."""
        if text.startswith(("ERROR", "[ERROR]")) or (kind == "error" and text):
            reasons = [r for r in self.inventory_reasons if r not in text]
            if "parse inventory" in text and reasons:
                text = f"{text}: {'; '.join(reasons)}"
            self.errors.append(text)
            return
        match = _INVENTORY_WARNING.search(text)
        if match and not any(generic in match.group(2) for generic in _NOT_MINE):
            reason = match.group(2).strip()
            if reason not in self.inventory_reasons:
                self.inventory_reasons.append(reason)

    def _result(self, kind: str, data: dict[str, Any]) -> None:
        host = str(data.get("host"))
        res = data.get("res") or {}
        self.running.discard(host)
        self.retries.pop(host, None)
        counted = self._host(host, self._counted)
        if kind != "runner_on_skipped" and short_role(data.get("role")):
            self.roles_ran.add(short_role(data.get("role")))
        if kind == "runner_on_ok":
            counted.ok += 1
            counted.changed += bool(res.get("changed"))
        elif kind == "runner_on_skipped":
            counted.skipped += 1
        elif kind == "runner_on_unreachable":
            counted.unreachable += 1
        elif data.get("ignore_errors"):
            counted.ignored += 1
        else:
            counted.failed += 1
        key = data.get("task_uuid")
        timing = self.tasks.get(key) if key else None
        took = _duration(data)
        if timing is not None and took is not None:
            timing.hosts[host] = took
        if kind == "runner_on_unreachable" or (kind == "runner_on_failed"
                                               and not data.get("ignore_errors")):
            self.failures.append(Failure(
                host=host, task=task_label(data), message=failure_message(res),
                role=short_role(data.get("role")) or None,
                action=data.get("resolved_action") or data.get("task_action"),
                play=data.get("play") or self._play,
                unreachable=kind == "runner_on_unreachable"))

    def _stats(self, data: dict[str, Any]) -> None:
        self.stats_seen = True
        table: dict[str, HostStats] = {}
        for key, attr in _STATS_KEYS.items():
            for host, count in (data.get(key) or {}).items():
                setattr(self._host(host, table), attr, int(count))
        for host in data.get("processed") or {}:
            self._host(host, table)
        self.hosts = table
        self.artifact_data = dict(data.get("artifact_data") or {})

    def host_stats(self) -> dict[str, HostStats]:
        """The PLAY RECAP counts, or the counts of results seen when the run had no recap."""
        return self.hosts if self.stats_seen else self._counted

    def failed_roles(self) -> set[str]:
        """Roles of the tasks that failed (for the preflight exit code)."""
        return {f.role for f in self.failures if f.role}
