# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Many files at once: logs and JSONL records paired by name, GSM8K results, the summary."""

from __future__ import annotations

import re

from .gsm8k import parse_gsm8k
from .results import fill_failed, is_bench_jsonl, merge_record, parse_jsonl, parse_serving
from .tables import summarize


def _run_order(row: dict) -> tuple:
    """Sort key: input/output length, preset, iteration, then concurrency."""

    def num(key: str) -> float:
        v = row.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0

    return (
        num("isl"),
        num("osl"),
        str(row.get("preset") or ""),
        num("iteration"),
        num("max_concurrency"),
    )


def _paired(stem: str, text_rows: list[dict], recs: list[dict], warnings: list[str]) -> list:
    """The runs of one name stem: blocks merged with records when they pair one to one."""
    ok = [r for r in text_rows if not r.get("error")]
    if recs and len(recs) == len(ok):
        merged = iter([merge_record(t, j) for t, j in zip(ok, recs, strict=True)])
        out = [next(merged) if not r.get("error") else r for r in text_rows]
        for row in out:
            if row.get("mismatches"):
                warnings.append(
                    f"{row['source']}:{row['line']} and {row['jsonl_source']} "
                    f"disagree on {', '.join(row['mismatches'])}"
                )
        return out
    if text_rows:
        if recs:
            warnings.append(
                f"{stem}: {len(recs)} JSONL record(s) for {len(ok)} result "
                "block(s); the records were not merged"
            )
        return list(text_rows)
    for rec in recs:
        fill_failed(rec)
    return list(recs)


def collect(files: list[tuple[str, str]], strict: bool = True) -> dict:
    """Parse many files at once: ``[(name, text), ...]`` -> the ``bench.json`` document.

    ``*.jsonl`` files are bench_serving records (other JSONL files are skipped and listed in
    ``summary.skipped_files``); a record file and a log with the same name stem
    (``con8.log`` + ``con8.jsonl``) are the same runs and are merged in order. Returns
    ``{"runs", "gsm8k", "warmup", "summary"}``; runs are sorted by input/output length, preset,
    iteration and concurrency.

    Raises:
        ValueError: a truncated block (when ``strict``) or a bad JSONL line, with file and line.
    """
    logs: dict[str, list[dict]] = {}
    records: dict[str, list[dict]] = {}
    gsm8k: list[dict] = []
    order: list[str] = []
    skipped: list[str] = []
    warmup: list[dict] = []
    for name, text in files:
        stem = re.sub(r"\.(jsonl|log|txt|out)$", "", name)
        if stem not in order:
            order.append(stem)
        if name.endswith(".jsonl"):
            if not is_bench_jsonl(text):
                skipped.append(name)
                continue
            records.setdefault(stem, []).extend(parse_jsonl(text, name))
        else:
            parsed = parse_serving(text, name, strict=strict)
            warmup.extend(r for r in parsed if r.get("warmup"))
            logs.setdefault(stem, []).extend(r for r in parsed if not r.get("warmup"))
            gsm8k.extend(parse_gsm8k(text, name))
    rows: list[dict] = []
    warnings: list[str] = []
    for stem in order:
        rows.extend(_paired(stem, logs.get(stem, []), records.get(stem, []), warnings))
    rows.sort(key=_run_order)
    summary = summarize(rows, gsm8k)
    summary["warnings"] = warnings
    summary["skipped_files"] = skipped
    summary["warmup_runs"] = len(warmup)
    return {"runs": rows, "gsm8k": gsm8k, "warmup": warmup, "summary": summary}
