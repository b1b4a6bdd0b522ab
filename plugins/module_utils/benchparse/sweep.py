# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""The sweep plan of the benchmark role: which bench_serving runs, with how many prompts."""

from __future__ import annotations

import re


def prompts_for(concurrency: int, factor: int = 2, minimum: int = 16) -> int:
    """The seed's prompt count for a concurrency: ``max(minimum, factor x concurrency)``.

    Raises:
        ValueError: the concurrency is below 1.
    """
    if int(concurrency) < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    return max(int(minimum), int(factor) * int(concurrency))


def _checked_presets(presets: list) -> list[dict]:
    """``{name, isl, osl}`` presets with unique, file-name-safe names and positive lengths."""
    names: set[str] = set()
    checked = []
    for p in presets:
        if not isinstance(p, dict) or not {"name", "isl", "osl"} <= set(p):
            raise ValueError(f"a preset needs name, isl and osl: {p!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(p["name"])):
            raise ValueError(f"preset name {p['name']!r}: use letters, digits, '_', '.', '-'")
        if p["name"] in names:
            raise ValueError(f"preset name {p['name']!r} is used twice")
        if int(p["isl"]) < 1 or int(p["osl"]) < 1:
            raise ValueError(f"preset {p['name']!r}: isl and osl must be >= 1")
        names.add(p["name"])
        checked.append({"name": str(p["name"]), "isl": int(p["isl"]), "osl": int(p["osl"])})
    return checked


def _checked_concurrencies(concurrencies: list) -> list[int]:
    """The concurrencies as ints; each must be a positive integer (not a bool)."""
    cons = []
    for c in concurrencies:
        if isinstance(c, bool) or int(c) != c or int(c) < 1:
            raise ValueError(f"concurrency {c!r} is not a positive integer")
        cons.append(int(c))
    return cons


def sweep_points(
    concurrencies: list, presets: list, iterations: int = 1, factor: int = 2, minimum: int = 16
) -> list[dict]:
    """Every bench_serving run of a sweep, in the order the seed runs them.

    ``presets``: ``[{"name": "1k1k", "isl": 1024, "osl": 1024}, ...]``; iterations outermost,
    then presets, then concurrencies (seed: ``for i; for combo; for con``). Each run is
    ``{iteration, preset, isl, osl, concurrency, num_prompts, id}``.

    Raises:
        ValueError: an empty list, a bad preset, concurrency or iteration count.
    """
    if not concurrencies:
        raise ValueError("the concurrency list is empty")
    if not presets:
        raise ValueError("the preset list is empty")
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations!r}")
    checked = _checked_presets(presets)
    cons = _checked_concurrencies(concurrencies)
    return [
        {
            "iteration": it,
            "preset": p["name"],
            "isl": p["isl"],
            "osl": p["osl"],
            "concurrency": c,
            "num_prompts": prompts_for(c, factor, minimum),
            "id": f"{p['name']}/iter{it}_con{c}",
        }
        for it in range(1, int(iterations) + 1)
        for p in checked
        for c in cons
    ]
