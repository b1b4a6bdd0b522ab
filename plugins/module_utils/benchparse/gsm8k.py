# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""GSM8K result lines (``Accuracy:``, ``Invalid:``, ``Latency: ... s``, ``Output throughput:``)."""

from __future__ import annotations

import re

from .text import clean_lines

_GSM_RE = {
    "accuracy": re.compile(r"^Accuracy:\s*(?P<v>-?[0-9.]+)\s*$"),
    "invalid": re.compile(r"^Invalid:\s*(?P<v>-?[0-9.]+)\s*$"),
    "latency_s": re.compile(r"^Latency:\s*(?P<v>[0-9.]+)\s*s\s*$"),
    "output_throughput": re.compile(r"^Output throughput:\s*(?P<v>[0-9.]+)\s*token/s\s*$"),
    "num_questions": re.compile(r"^Questions:\s*(?P<v>\d+)\s*$"),
    "num_shots": re.compile(r"^Shots:\s*(?P<v>\d+)\s*$"),
    "failed_requests": re.compile(r"^Failed requests:\s*(?P<v>\d+)\s*$"),
}
# A result line belongs to the last ``Accuracy:`` line when it is at most this many lines below.
_GROUP_SPAN = 8


def _add_result_line(current: dict, body: str) -> None:
    """Store the first result line of each kind in ``current``."""
    for key, rx in _GSM_RE.items():
        m = rx.match(body)
        if m and key not in current:
            v = m.group("v")
            whole = key.startswith("num_") or key == "failed_requests"
            current[key] = int(v) if whole else float(v)
            return


def parse_gsm8k(text: str, source: str = "<text>") -> list[dict]:
    """GSM8K result groups: an ``Accuracy:`` line and the result lines within 8 lines of it.

    Each group is ``{"accuracy", "source", "line"}`` plus whichever of ``invalid``,
    ``latency_s``, ``output_throughput``, ``num_questions``, ``num_shots`` and
    ``failed_requests`` were printed.
    """
    rows: list[dict] = []
    current: dict | None = None
    for number, line in clean_lines(text):
        body = line.strip()
        m = _GSM_RE["accuracy"].match(body)
        if m:
            current = {"accuracy": float(m.group("v")), "source": source, "line": number}
            rows.append(current)
        elif current is not None and number - current["line"] <= _GROUP_SPAN:
            _add_result_line(current, body)
    return rows
