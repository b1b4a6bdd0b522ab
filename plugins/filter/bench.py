# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402, E501  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)
"""Filters for the benchmark role: the sweep plan, and parsing bench_serving/GSM8K text."""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_points
short_description: Expand a concurrency sweep into bench_serving runs (seed order and prompt counts)
version_added: 0.1.0
description:
  - One entry per run, iterations outermost, then presets, then concurrencies, with the seed's
    prompt count C(max(minimum, factor x concurrency)).
  - Other filters in this file, C(bench_results) and C(bench_gsm8k), parse bench_serving result
    blocks and GSM8K result lines from a string (see the C(bench_parse) module for files).
options:
  _input:
    description: Concurrency list.
    type: list
    elements: int
    required: true
  presets:
    description: List of C({name, isl, osl}).
    type: list
    elements: dict
    required: true
  iterations:
    description: Repetitions of the whole sweep.
    type: int
    default: 1
  factor:
    description: Prompts per unit of concurrency.
    type: int
    default: 2
  minimum:
    description: Minimum prompts per run.
    type: int
    default: 16
"""

EXAMPLES = r"""
- name: The seed's sweep
  ansible.builtin.debug:
    msg: "{{ [8, 16, 512] | inferops.disagg.bench_points([{'name': '1k1k', 'isl': 1024, 'osl': 1024}]) }}"

- name: Parse one log read with lookup
  ansible.builtin.debug:
    msg: "{{ lookup('ansible.builtin.file', 'con8.log') | inferops.disagg.bench_results }}"
"""

RETURN = r"""
_value:
  description: C(bench_points) gives C({iteration, preset, isl, osl, concurrency, num_prompts, id})
    entries; C(bench_results) and C(bench_gsm8k) give one dict per result.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils._bench_parse import (
    _json_safe,
    _parse_gsm8k,
    _parse_serving,
    _sweep_points,
)


def bench_points(
    concurrencies: list, presets: list, iterations: int = 1, factor: int = 2, minimum: int = 16
) -> list[dict]:
    """Expand the sweep."""
    try:
        return _sweep_points(list(concurrencies), list(presets), iterations, factor, minimum)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"bench_points: {exc}") from exc


def bench_results(text: str, source: str = "<text>", strict: bool = True) -> list[dict]:
    """bench_serving result blocks of a string."""
    try:
        return _json_safe(_parse_serving(str(text), source, strict=strict))
    except ValueError as exc:
        raise AnsibleFilterError(f"bench_results: {exc}") from exc


def bench_gsm8k(text: str, source: str = "<text>") -> list[dict]:
    """GSM8K result groups of a string."""
    return _parse_gsm8k(str(text), source)


class FilterModule:
    """inferops.disagg benchmark filters."""

    def filters(self) -> dict:
        return {
            "bench_points": bench_points,
            "bench_results": bench_results,
            "bench_gsm8k": bench_gsm8k,
        }
