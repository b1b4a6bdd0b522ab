# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Text helpers shared by the bench_serving and GSM8K readers: clean lines, printed numbers."""

from __future__ import annotations

import math
import re

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clean_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) pairs: ANSI removed, ``\\r``-separated tqdm frames split apart.

    Blank parts are dropped; line numbers are 1-based and count the original lines.
    """
    out: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = _ANSI_RE.sub("", line)
        for part in line.split("\r"):
            if part.strip():
                out.append((number, part.rstrip()))
    return out


def _special(low: str, kind: str) -> tuple[bool, object]:
    """(True, value) for the words bench_serving prints instead of a number."""
    if kind == "int_or_none" and low in ("not set", "none", "unlimited"):
        return True, None
    if kind == "rate" and low in ("inf", "infinity"):
        return True, math.inf
    if kind == "rate" and low == "trace":
        return True, "trace"
    return False, None


def parse_number(text: str, kind: str, where: str) -> object:
    """A printed value as ``kind``: ``str``, ``int``, ``float``, ``int_or_none`` or ``rate``.

    ``int_or_none`` reads ``not set``/``none``/``unlimited`` as ``None``; ``rate`` reads
    ``inf`` as ``math.inf`` and keeps ``trace``. Thousands separators are ignored.

    Raises:
        ValueError: ``"<where>: '<text>' is not a number"``.
    """
    raw = text.strip()
    if kind == "str":
        return raw
    special, value = _special(raw.lower(), kind)
    if special:
        return value
    cleaned = raw.replace(",", "")
    try:
        if kind in ("int", "int_or_none"):
            number = float(cleaned)
            if not number.is_integer():
                raise ValueError(raw)
            return int(number)
        return float(cleaned)
    except ValueError:
        raise ValueError(f"{where}: {raw!r} is not a number") from None
