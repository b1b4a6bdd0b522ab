"""The end-of-run summary: a JSON document (``--json``, ``summary.json``) and a text table."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pdctl import exitcodes
from pdctl.events import Failure, Recorder

SCHEMA = "pdctl.run/v1"
_COLUMNS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")


def build_summary(recorder: Recorder, *, command: str, status: str, rc: int | None,
                  exit_code: int, run_id: str, run_dir: str, inventory: str,
                  playbook: str | None, started: str, finished: str, duration_s: float,
                  endpoints: dict[str, Any] | None = None, error: str | None = None,
                  slowest: int = 10) -> dict[str, Any]:
    """Everything a CI job needs to know about one run, JSON-serialisable.

    ``failures`` always names the cause of a failed run: the failed host results (host, task,
    role, message) or, when the run failed outside any task (a broken inventory, a syntax
    error), one entry with ``host: null`` holding Ansible's error text or ``error``. Failed
    results of a run that succeeded (rescued by a block) are listed under ``recovered``.
    """
    failures: list[Failure] = list(recorder.failures)
    # In a run that succeeded, the failed results were rescued (a block's rescue) or retried:
    # they are reported, but not as the run's failures.
    recovered: list[Failure] = failures if exit_code == exitcodes.OK else []
    failures = [] if exit_code == exitcodes.OK else failures
    if exit_code != exitcodes.OK and not failures:
        message = error or "\n".join(recorder.errors[-5:]) or f"ansible-runner status {status}"
        failures.append(Failure(host=None, task=None, message=message))
    tasks = sorted(recorder.tasks.values(), key=lambda t: t.duration_s, reverse=True)
    return {
        "schema": SCHEMA,
        "command": command,
        "ok": exit_code == exitcodes.OK,
        "exit_code": exit_code,
        "exit_meaning": exitcodes.DESCRIPTION.get(exit_code, ""),
        "status": status,
        "ansible_rc": rc,
        "run_id": run_id,
        "run_dir": run_dir,
        "inventory": inventory,
        "playbook": playbook,
        "started": started,
        "finished": finished,
        "hosts": {host: asdict(stats) for host, stats in sorted(recorder.host_stats().items())},
        "endpoints": endpoints or {},
        "failures": [f.as_dict() for f in failures],
        "recovered": [f.as_dict() for f in recovered],
        "errors": recorder.errors,
        "timings": {
            "total_s": round(duration_s, 3),
            "tasks_count": len(recorder.tasks),
            "slowest_tasks": [
                {"task": t.task, "role": t.role, "play": t.play,
                 "duration_s": round(t.duration_s, 3),
                 "slowest_host": max(t.hosts, key=t.hosts.__getitem__) if t.hosts else None}
                for t in tasks[:slowest]
            ],
        },
    }


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    """Left-aligned text columns with a dashed rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return [ln.rstrip() for ln in lines]


def _endpoint_text(value: Any) -> str:
    """``{"host": h, "url": u}`` -> ``u (h)``; lists joined; anything else as is."""
    if isinstance(value, list):
        return ", ".join(_endpoint_text(v) for v in value) or "-"
    if isinstance(value, dict) and "url" in value:
        return f"{value['url']} ({value['host']})" if value.get("host") else str(value["url"])
    return "-" if value is None else str(value)


def render_summary(summary: dict[str, Any]) -> str:
    """The human summary printed at the end of a run (a table per host, failures, endpoints)."""
    out = [f"== SUMMARY {summary['command']}: {summary['exit_meaning']} "
           f"(exit {summary['exit_code']}, {summary['timings']['total_s']:.1f}s)"]
    hosts = summary["hosts"]
    if hosts:
        rows = [[host, *(str(stats[c]) for c in _COLUMNS)] for host, stats in hosts.items()]
        out += table(rows, ["host", *_COLUMNS])
    if summary["failures"]:
        out.append("failures:")
        for f in summary["failures"]:
            where = f"{f['host']} | {f['task']}" if f["host"] else "run"
            first, *rest = str(f["message"]).splitlines() or [""]
            out.append(f"  {where}: {first}")
            out += [f"      {line}" for line in rest[:8]]
    if summary["endpoints"]:
        out.append("endpoints:")
        for name, value in summary["endpoints"].items():
            if name == "routers" or value in (None, [], {}):
                continue
            out.append(f"  {name}: {_endpoint_text(value)}")
    slow = [t for t in summary["timings"]["slowest_tasks"] if t["duration_s"] >= 1.0][:5]
    if slow:
        out.append("slowest tasks:")
        out += [f"  {t['duration_s']:7.1f}s  {t['task']}" for t in slow]
    out.append(f"run dir: {summary['run_dir']}")
    return "\n".join(out)
