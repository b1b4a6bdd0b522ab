# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""What a fault drill (playbooks/drill.yml) measured, from the load's request log and the
drill's marks. Pure logic; the ``inferops.disagg.drill_summary`` and ``drill_markdown`` filters
wrap it.

The request log is one JSON object per line, as ``roles/benchmark/files/drill_load.py`` writes
it: ``{"t0", "t1", "ok", "status", "error", "prompt", "text"}`` (epoch seconds). The marks are
epoch seconds of the drill's steps: ``inject`` (the fault is in), ``restore`` (the restore
starts), ``healthy`` (the restore is done: the worker is healthy and the router lists it).

Definitions (docs/day2.md, "Fault drills"):

- *failed*: no 200 answer (the load's clients give up after their own timeout); *wrong*: a 200
  answer whose text differs from the reference answer to the same prompt (temperature 0: the
  most common answer before the fault);
- *service down*: requests failed after the fault and none succeeded between the fault and the
  restore (the role had no other instance);
- *refused*: failures the router answered itself with 503 (it had no healthy worker to send
  them to); the other failures reached the bad worker (or hung on it);
- *router kept sending to the bad worker for*: from ``inject`` to the start of the last failed,
  not refused, request that started before the restore (about the hold time when the router
  never stopped; 0 when none reached it);
- *first good answer after healthy*: ``first_good`` (the drill's own probe through the router
  after the restore, when given) minus ``healthy``; the target is at most 5 s;
- *service back after*: from ``inject`` to the end of the first good answer after the last
  failure (0 when nothing failed).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

MARKS = ("inject", "restore", "healthy")


class DrillError(ValueError):
    """The request log or the marks cannot be read; the message says which line or mark."""


def parse_log(text: str, source: str = "<log>") -> list[dict]:
    """The request records of a drill load's JSON-lines log (DrillError names a bad line)."""
    out: list[dict] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            float(rec["t0"]), float(rec["t1"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DrillError(f"{source} line {number}: not a drill request record ({exc}): "
                             f"{line[:120]!r}") from None
        out.append(rec)
    return out


def _p99(values: Iterable[float]) -> float | None:
    data = sorted(values)
    if not data:
        return None
    return round(data[min(len(data) - 1, math.ceil(0.99 * len(data)) - 1)], 3)


def _references(records: list[dict], before: float) -> dict[str, str]:
    """Prompt -> its reference answer: the most common good answer before ``before`` (else the
    most common one at all)."""
    refs: dict[str, str] = {}
    for window in (lambda r: r["t1"] <= before, lambda r: True):
        counts: dict[str, Counter] = {}
        for rec in records:
            if rec.get("ok") and isinstance(rec.get("text"), str) and window(rec):
                counts.setdefault(rec["prompt"], Counter())[rec["text"]] += 1
        for prompt, counter in counts.items():
            refs.setdefault(prompt, counter.most_common(1)[0][0])
    return refs


def summarize(records: list[dict], marks: Mapping[str, Any], drill: str = "",
              target: str = "") -> dict[str, Any]:
    """The drill's figures (see the module's definitions)."""
    try:
        inject, restore, healthy = (float(marks[m]) for m in MARKS)
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillError(f"drill marks need {', '.join(MARKS)} as epoch seconds: {exc}") from None
    records = sorted(records, key=lambda r: r["t1"])
    refs = _references(records, inject)
    failed = [r for r in records if not r.get("ok")]
    wrong = [r for r in records if r.get("ok") and refs.get(r["prompt"]) != r.get("text")]
    after = [r for r in failed if r["t1"] >= inject]
    good_during = [r for r in records if r.get("ok") and r["t0"] >= inject and r["t1"] <= restore]
    down = bool(after) and not good_during
    refused = [r for r in after if r.get("status") == 503]
    started_before = [r["t0"] for r in after if r["t0"] < restore and r.get("status") != 503]
    sending = round(max(0.0, max(started_before) - inject), 3) if started_before else 0.0
    last_failure = after[-1]["t1"] if after else None
    back = next((r for r in records if r.get("ok") and last_failure is not None
                 and r["t1"] > last_failure), None)
    first_good = marks.get("first_good")
    steady = [r["t1"] - r["t0"] for r in records if r.get("ok") and r["t1"] < inject]
    during = [r["t1"] - r["t0"] for r in records if r.get("ok") and inject <= r["t0"] <= healthy]
    ttft_steady = [r["ttft"] for r in records if r.get("ok") and "ttft" in r and r["t1"] < inject]
    ttft_during = [r["ttft"] for r in records
                   if r.get("ok") and "ttft" in r and inject <= r["t0"] <= healthy]
    return {
        "drill": drill, "target": target,
        "sent": len(records), "failed": len(failed), "wrong": len(wrong),
        "failed_after_fault": len(after), "refused_by_router": len(refused),
        "errors": dict(Counter((r.get("error") or f"HTTP {r.get('status')}")[:80]
                               for r in failed).most_common(5)),
        "service_down": down,
        "router_kept_sending_s": sending,
        "first_good_after_healthy_s": (round(max(0.0, float(first_good) - healthy), 3)
                                       if first_good is not None else None),
        "service_back_after_s": (round(back["t1"] - inject, 3) if back else
                                 (0.0 if last_failure is None else None)),
        "fault_s": round(restore - inject, 3), "restore_s": round(healthy - restore, 3),
        "latency_p99_steady_s": _p99(steady), "latency_p99_during_s": _p99(during),
        "ttft_p99_steady_s": _p99(ttft_steady), "ttft_p99_during_s": _p99(ttft_during),
        "marks": {m: float(v) for m, v in marks.items() if v is not None},
    }


def _fmt(value: Any, unit: str = " s") -> str:
    return "-" if value is None else f"{value}{unit}"


def markdown(summary: Mapping[str, Any], router_workers: Any = None,
             log_tail: Iterable[str] = ()) -> str:
    """The drill's report.md: the figures, then what the operator saw."""
    s = summary
    rows = [
        ("requests sent", s["sent"]), ("failed", s["failed"]), ("wrong answers", s["wrong"]),
        ("failed after the fault was injected", s["failed_after_fault"]),
        ("of them refused by the router at once (503, no healthy worker)", s["refused_by_router"]),
        ("service down during the fault (no request succeeded)",
         "yes" if s["service_down"] else "no"),
        ("router kept sending to the bad worker for", _fmt(s["router_kept_sending_s"])),
        ("first good answer after the restored service was healthy",
         _fmt(s["first_good_after_healthy_s"])),
        ("full service back after the fault", _fmt(s["service_back_after_s"])),
        ("fault held / restore took", f"{s['fault_s']} s / {s['restore_s']} s"),
        ("p99 latency steady / during", f"{_fmt(s['latency_p99_steady_s'])} / "
                                        f"{_fmt(s['latency_p99_during_s'])}"),
        ("p99 TTFT steady / during", f"{_fmt(s.get('ttft_p99_steady_s'))} / "
                                     f"{_fmt(s.get('ttft_p99_during_s'))}"),
    ]
    out = [f"# Drill {s['drill']} on {s['target']}", ""]
    if s.get("fault"):
        out += [f"Fault: {s['fault']}.", ""]
    out += ["| measure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    if s["errors"]:
        out += ["", "Failures: " + "; ".join(f"{n} x {e}" for e, n in s["errors"].items())]
    out += ["", "## What the operator saw during the fault", "", "Router `/workers`:", ""]
    workers = (router_workers or {}).get("workers") if isinstance(router_workers, dict) else None
    if workers:
        out += [f"- {w.get('worker_type')} {w.get('url')}: "
                f"{'healthy' if w.get('is_healthy') else 'UNHEALTHY'}" for w in workers]
    else:
        said = "" if router_workers is None else str(router_workers)[:200]
        out.append(f"- (no listing: {said or 'the router did not answer'})")
    tail = list(log_tail)
    out += ["", f"Last {len(tail)} log lines of the target:", "", "```", *tail, "```", ""]
    return "\n".join(out)
