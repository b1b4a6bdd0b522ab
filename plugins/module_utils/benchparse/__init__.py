# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Read SGLang benchmark output and turn it into tables (public API).

Pure logic, standard library only, shared by the ``inferops.disagg.bench_parse`` module, the
``bench_*`` filters and the ``pdbench`` CLI (installed there as the ``benchparse`` package).
Errors are ``ValueError`` naming the source and line.

* :mod:`.results`: ``python -m sglang.bench_serving`` result blocks (SGLang 0.3, 0.4.x, 0.5.x,
  vLLM) with their run context, and ``--output-file`` JSONL records.
* :mod:`.errors`: known request errors (``transfer_encoding_400``), named and counted, with a
  hint.
* :mod:`.gsm8k`: GSM8K result lines.
* :mod:`.sweep`: the benchmark role's sweep plan.
* :mod:`.tables`: CSV/JSON/Markdown rendering and the summary.
* :mod:`.collect`: many files at once (the ``bench.json`` document).
"""

from __future__ import annotations

from .collect import collect
from .errors import (
    KNOWN_ERRORS,
    ROUTER_SETTINGS,
    ErrorTally,
    classify_error,
    count_known_errors,
    known_error_total,
    scan_known_errors,
)
from .gsm8k import parse_gsm8k
from .results import (
    BLOCK_TITLE,
    REQUIRED,
    fill_failed,
    is_bench_jsonl,
    key_for,
    merge_record,
    parse_jsonl,
    parse_serving,
)
from .sweep import prompts_for, sweep_points
from .tables import (
    COLUMNS,
    EXTRA_COLUMNS,
    SEED_COLUMNS,
    client_sentence,
    document_markdown,
    failed_sentence,
    gsm8k_markdown,
    json_safe,
    known_error_sentences,
    red,
    summarize,
    to_csv,
    to_markdown,
)
from .text import clean_lines, parse_number

__all__ = [
    "BLOCK_TITLE",
    "COLUMNS",
    "EXTRA_COLUMNS",
    "KNOWN_ERRORS",
    "REQUIRED",
    "ROUTER_SETTINGS",
    "SEED_COLUMNS",
    "ErrorTally",
    "classify_error",
    "clean_lines",
    "client_sentence",
    "collect",
    "count_known_errors",
    "document_markdown",
    "failed_sentence",
    "fill_failed",
    "gsm8k_markdown",
    "is_bench_jsonl",
    "json_safe",
    "key_for",
    "known_error_sentences",
    "known_error_total",
    "merge_record",
    "parse_gsm8k",
    "parse_jsonl",
    "parse_number",
    "parse_serving",
    "prompts_for",
    "red",
    "scan_known_errors",
    "summarize",
    "sweep_points",
    "to_csv",
    "to_markdown",
]
