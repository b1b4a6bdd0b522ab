# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE preflight finding primitives shared by ``_preflight`` and ``_preflight_kv`` (not a
public API): the finding dict, its one-line rendering and the cell/size formatting of the report.

A finding is ``{"host", "check", "found", "expected", "fix"}`` and renders as one line::

    HOST: CHECK: found X, expected Y; fix: Z
"""

from __future__ import annotations

GIB = 1024**3


def finding(host: str, check: str, found: str, expected: str, fix: str) -> dict:
    """One finding dict."""
    return {"host": host, "check": check, "found": found, "expected": expected, "fix": fix}


def render(finding: dict) -> str:
    """``HOST: CHECK: found X, expected Y; fix: Z``."""
    return (f"{finding['host']}: {finding['check']}: found {finding['found']}, "
            f"expected {finding['expected']}; fix: {finding['fix']}")


def human_bytes(value: int | None) -> str:
    """``1073741824`` -> ``"1 GiB"``; -1 is ``"unlimited"``, None ``"unknown"``."""
    if value is None:
        return "unknown"
    if value < 0:
        return "unlimited"
    for unit, size in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def cell(text: object) -> str:
    """``text`` safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
