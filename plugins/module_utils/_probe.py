# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE helpers shared by the preflight fact parsers (not a public API).

Pure Python, no AnsibleModule: the parsers raise :class:`ProbeError` (a ``ValueError``) whose
message names the command or file, the host-independent check it feeds, and the fix, so a module
can hand it to ``fail_json`` unchanged and a unit test can match on it.
"""

from __future__ import annotations

import os
import re

NA_VALUES = frozenset({"n/a", "na", "none", "unknown", "not supported", "unsupported", ""})


class ProbeError(ValueError):
    """Malformed or unusable input from a command or a file."""

    def __init__(self, source: str, problem: str, check: str, fix: str) -> None:
        self.source = source
        self.problem = problem
        self.check = check
        self.fix = fix
        super().__init__(f"{source}: {problem} (check {check}); fix: {fix}")


def is_na(value: object) -> bool:
    """Tell whether ``value`` is one of the tools' "not available" spellings (or None)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in NA_VALUES
    if isinstance(value, dict) and "value" in value:
        return is_na(value.get("value"))
    return False


def clean(value: object) -> object:
    """Return ``value`` with "N/A" spellings turned into None (strings stripped)."""
    if is_na(value):
        return None
    if isinstance(value, str):
        return value.strip()
    return value


def rooted(root: str, path: str) -> str:
    """Join an absolute ``path`` under ``root`` (``root='/'`` leaves it unchanged)."""
    return os.path.join(root, path.lstrip("/"))


def read_text(root: str, path: str) -> str | None:
    """Return the stripped text of ``root``/``path``, or None when it is absent or unreadable."""
    try:
        with open(rooted(root, path), encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def read_int(root: str, path: str, check: str, fix: str, base: int = 10) -> int | None:
    """Return the integer in ``root``/``path``; None when absent; ProbeError when not a number."""
    text = read_text(root, path)
    if text is None or text == "":
        return None
    try:
        return int(text.split()[0], base)
    except ValueError:
        raise ProbeError(path, f"expected a number, found {text[:60]!r}", check, fix) from None


_UNITS = {
    "b": 1,
    "bytes": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def to_bytes(value: object, default_unit: str, source: str, check: str) -> int | None:
    """Convert an amd-smi style quantity to bytes.

    Accepts ``{"value": 192, "unit": "GB"}``, ``"192 GB"``, a bare number (in ``default_unit``)
    and every "N/A" spelling (None). The tools' MB/GB are binary (amd-smi's ``196592 MB`` is the
    ``206141652992`` bytes sysfs reports).
    """
    if is_na(value):
        return None
    unit = default_unit
    if isinstance(value, dict):
        unit = str(value.get("unit") or default_unit)
        value = value.get("value")
    if isinstance(value, bool):
        raise ProbeError(source, f"expected a size, found {value!r}", check,
                         "report the tool output")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _QUANTITY.match(str(value))
        if not match:
            raise ProbeError(
                source, f"expected a size like '192 GB', found {value!r}", check,
                "upgrade the tool or report its output",
            )
        number = float(match.group(1))
        unit = match.group(2) or unit
    factor = _UNITS.get(unit.strip().lower())
    if factor is None:
        raise ProbeError(source, f"unknown size unit {unit!r}", check, "report the tool output")
    return int(number * factor)
