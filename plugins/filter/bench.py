# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the benchmark role: the sweep plan, and parsing bench_serving/GSM8K text.

Documented for ``ansible-doc -t filter`` in ``bench_points.yml``, ``bench_results.yml`` and
``bench_gsm8k.yml`` next to this file. The logic is the collection's ``benchparse``
module_utils (also used by the ``bench_parse`` module and the ``pdbench`` CLI).
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils.benchparse import (
    json_safe,
    parse_gsm8k,
    parse_serving,
    sweep_points,
)


def bench_points(
    concurrencies: list, presets: list, iterations: int = 1, factor: int = 2, minimum: int = 16
) -> list[dict]:
    """``{{ [8, 16] | inferops.disagg.bench_points(presets) }}``: every run of the sweep."""
    try:
        return sweep_points(list(concurrencies), list(presets), iterations, factor, minimum)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"bench_points: {exc}") from exc


def bench_results(text: str, source: str = "<text>", strict: bool = True) -> list[dict]:
    """``{{ log_text | inferops.disagg.bench_results }}``: bench_serving result blocks."""
    try:
        return json_safe(parse_serving(str(text), source, strict=strict))
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_results: {exc}") from exc


def bench_gsm8k(text: str, source: str = "<text>") -> list[dict]:
    """``{{ log_text | inferops.disagg.bench_gsm8k }}``: GSM8K result groups."""
    return parse_gsm8k(str(text), source)


class FilterModule:
    """inferops.disagg benchmark filters."""

    def filters(self) -> dict:
        """Filter name to function."""
        return {
            "bench_points": bench_points,
            "bench_results": bench_results,
            "bench_gsm8k": bench_gsm8k,
        }
