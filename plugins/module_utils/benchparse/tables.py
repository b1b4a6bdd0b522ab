# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Tables and rendering of parsed runs: CSV columns, strict JSON, Markdown, the summary."""

from __future__ import annotations

import csv
import io
import math

from .errors import KNOWN_ERRORS, known_error_total

# (CSV column, key) -- the seed's benchmark_parser.py columns first, in its order.
SEED_COLUMNS = [
    ("Model", "model"),
    ("xP_yD", "xp_yd"),
    ("ISL", "isl"),
    ("OSL", "osl"),
    ("Concurrency", "max_concurrency"),
    ("Prompts_Group", "prompts_per_group"),
    ("Total_Prompts", "num_prompts"),
    ("Total_Input_Tokens", "total_input_tokens"),
    ("Total_Output_Tokens", "total_output_tokens"),
    ("Request_Throughput_req_s", "request_throughput"),
    ("Input_Token_Throughput_tok_s", "input_throughput"),
    ("Output_Token_Throughput_tok_s", "output_throughput"),
    ("Total_Token_Throughput_tok_s", "total_throughput"),
    ("Mean_E2E_Latency_ms", "mean_e2e_latency_ms"),
    ("Mean_TTFT_ms", "mean_ttft_ms"),
    ("Mean_ITL_ms", "mean_itl_ms"),
]
EXTRA_COLUMNS = [
    ("Preset", "preset"),
    ("Iteration", "iteration"),
    ("Successful_Requests", "successful_requests"),
    ("Failed_Requests", "failed_requests"),
    ("Known_Errors", "known_errors"),
    ("Duration_s", "duration_s"),
    ("Median_E2E_Latency_ms", "median_e2e_latency_ms"),
    ("P99_E2E_Latency_ms", "p99_e2e_latency_ms"),
    ("Median_TTFT_ms", "median_ttft_ms"),
    ("P99_TTFT_ms", "p99_ttft_ms"),
    ("Median_ITL_ms", "median_itl_ms"),
    ("P95_ITL_ms", "p95_itl_ms"),
    ("P99_ITL_ms", "p99_itl_ms"),
    ("Max_ITL_ms", "max_itl_ms"),
    ("Mean_TPOT_ms", "mean_tpot_ms"),
    ("Median_TPOT_ms", "median_tpot_ms"),
    ("P99_TPOT_ms", "p99_tpot_ms"),
    ("Measured_Concurrency", "measured_concurrency"),
    ("Backend", "backend"),
    ("Error", "error"),
    ("Source", "source"),
    ("Line", "line"),
]
COLUMNS = SEED_COLUMNS + EXTRA_COLUMNS

_RUN_HEAD = [
    "Preset",
    "ISL/OSL",
    "Conc.",
    "Prompts",
    "OK",
    "Failed",
    "Duration (s)",
    "Req/s",
    "In tok/s",
    "Out tok/s",
    "Total tok/s",
    "TTFT ms mean / p50 / p99",
    "ITL ms mean / p50 / p99",
    "TPOT ms mean / p50 / p99",
    "E2E ms mean / p50 / p99",
]
_GSM8K_HEAD = [
    "Source",
    "Questions",
    "Shots",
    "Accuracy",
    "Invalid",
    "Latency (s)",
    "Output tok/s",
    "Failed requests",
]


# --------------------------------------------------------------------------------------------
# CSV and JSON
# --------------------------------------------------------------------------------------------
def _cell(row: dict, key: str) -> object:
    """A CSV cell: ``xp_yd`` as ``<x>p<y>d``, infinity as ``inf``, known errors as ``key=n``."""
    if key == "xp_yd":
        return f"{row['xp']}p{row['yd']}d" if "xp" in row and "yd" in row else None
    if key == "known_errors":
        known = row.get("known_errors") or {}
        return " ".join(f"{k}={known_error_total(v)}" for k, v in known.items()) or None
    value = row.get(key)
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return value


def to_csv(rows: list[dict]) -> str:
    """CSV with :data:`COLUMNS`; numbers unformatted (as parsed), empty where unknown."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([column for column, _key in COLUMNS])
    for row in rows:
        writer.writerow(["" if (v := _cell(row, key)) is None else v for _column, key in COLUMNS])
    return buf.getvalue()


def json_safe(value: object) -> object:
    """Replace non-finite floats (``request_rate: inf``) so the JSON is strict.

    Works through dicts and lists; ``inf``/``-inf``/``nan`` become those strings.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def _fmt(value: object, digits: int = 2) -> str:
    """A Markdown cell: ``-`` when unknown, floats with ``digits`` decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def _trio(row: dict, metric: str) -> str:
    """``mean / median / p99`` of a latency metric."""
    parts = [
        row.get(f"mean_{metric}_ms"),
        row.get(f"median_{metric}_ms"),
        row.get(f"p99_{metric}_ms"),
    ]
    return " / ".join(_fmt(p) for p in parts)


def red(text: str) -> str:
    """``text`` in bold red (HTML inside Markdown)."""
    return f'<span style="color:red">**{text}**</span>'


def _known_note(row: dict) -> str:
    """`` (N TransferEncodingError)`` for the known errors of a run, else ``""``."""
    known = row.get("known_errors") or {}
    parts = [f"{known_error_total(v)} {KNOWN_ERRORS[k]['name']}" for k, v in known.items()]
    return f" ({', '.join(parts)})" if parts else ""


def _failed_cell(row: dict) -> str:
    """``truncated``/``N FAILED`` in red (with the known errors named), ``0``, or ``unknown``;
    `` (block not closed)`` when the result block had no closing ``=====`` line."""
    if row.get("error"):
        return red("truncated") + _known_note(row)
    failed = row.get("failed_requests")
    unclosed = " (block not closed)" if row.get("closed") is False else ""
    if failed is None:
        return "unknown" + _known_note(row) + unclosed
    text = red(f"{failed} FAILED") if failed else "0"
    return text + _known_note(row) + unclosed


def _table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def _run_cells(r: dict) -> list[str]:
    """The cells of one run in :func:`to_markdown`."""
    preset = str(r.get("preset") or r.get("model") or "")
    if r.get("iteration") is not None:
        preset += f" #{r['iteration']}"
    return [
        preset,
        f"{_fmt(r.get('isl'))}/{_fmt(r.get('osl'))}",
        _fmt(r.get("max_concurrency")),
        _fmt(r.get("num_prompts")),
        _fmt(r.get("successful_requests")),
        _failed_cell(r),
        _fmt(r.get("duration_s")),
        _fmt(r.get("request_throughput")),
        _fmt(r.get("input_throughput")),
        _fmt(r.get("output_throughput")),
        _fmt(r.get("total_throughput")),
        _trio(r, "ttft"),
        _trio(r, "itl"),
        _trio(r, "tpot"),
        _trio(r, "e2e_latency"),
    ]


def to_markdown(rows: list[dict]) -> str:
    """A Markdown table of the runs; failed requests and truncated blocks in red."""
    return _table(_RUN_HEAD, [_run_cells(r) for r in rows])


def _gsm8k_cells(r: dict) -> list[str]:
    """The cells of one GSM8K result in :func:`gsm8k_markdown`."""
    failed = r.get("failed_requests")
    return [
        f"{r.get('source')}:{r.get('line')}",
        _fmt(r.get("num_questions")),
        _fmt(r.get("num_shots")),
        _fmt(r.get("accuracy"), 3),
        _fmt(r.get("invalid"), 3),
        _fmt(r.get("latency_s"), 3),
        _fmt(r.get("output_throughput"), 3),
        red(f"{failed} FAILED") if failed else _fmt(failed),
    ]


def gsm8k_markdown(rows: list[dict]) -> str:
    """A Markdown table of GSM8K results."""
    return _table(_GSM8K_HEAD, [_gsm8k_cells(r) for r in rows])


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------
def _failure_entry(r: dict) -> dict:
    """What the summary says about one run with failures."""
    return {
        "source": r.get("source"),
        "line": r.get("line"),
        "preset": r.get("preset"),
        "max_concurrency": r.get("max_concurrency"),
        "failed_requests": r.get("failed_requests"),
        "known_errors": r.get("known_errors") or {},
        "error": r.get("error"),
    }


def _known_errors(rows: list[dict]) -> list[dict]:
    """Per known error and concurrency: affected requests, runs, the hint (summary entries)."""
    found: dict[tuple[str, object], dict] = {}
    for r in rows:
        for key, counts in (r.get("known_errors") or {}).items():
            con = r.get("max_concurrency")
            entry = found.setdefault(
                (key, con),
                dict(
                    {k: v for k, v in KNOWN_ERRORS[key].items() if k != "signature"},
                    key=key,
                    max_concurrency=con,
                    requests=0,
                    lines=0,
                    affected=0,
                    runs=[],
                ),
            )
            entry["requests"] += int(counts.get("requests") or 0)
            entry["lines"] += int(counts.get("lines") or 0)
            entry["affected"] += known_error_total(counts)
            entry["runs"].append(f"{r.get('source')}:{r.get('line')}")
    order = list(KNOWN_ERRORS)
    return sorted(
        found.values(),
        key=lambda e: (
            order.index(e["key"]),
            e["max_concurrency"] is None,
            e["max_concurrency"] or 0,
        ),
    )


def _where(row: dict) -> str:
    """``source:line`` of a run's result block."""
    return f"{row.get('source')}:{row.get('line')}"


def summarize(rows: list[dict], gsm8k: list[dict] | None = None) -> dict:
    """Totals: runs, requests, failed requests, and which runs failed or were truncated.

    ``runs_with_unknown_failures``/``unknown_failure_runs``: runs that said neither how many
    requests failed nor how many prompts they sent; ``unclosed_blocks``/``unclosed_runs``: result
    blocks read to their end but without their closing ``=====`` line (``source:line`` each).
    """
    failed_runs = [
        r for r in rows if r.get("error") or r.get("failed_requests") or r.get("known_errors")
    ]
    unknown = [r for r in rows if not r.get("error") and r.get("failed_requests") is None]
    unclosed = [r for r in rows if not r.get("error") and r.get("closed") is False]
    return {
        "runs": len(rows),
        "requests": sum(
            int(r.get("num_prompts") or r.get("successful_requests") or 0) for r in rows
        ),
        "successful_requests": sum(int(r.get("successful_requests") or 0) for r in rows),
        "failed_requests": sum(int(r.get("failed_requests") or 0) for r in rows),
        "truncated_blocks": sum(1 for r in rows if r.get("error")),
        "runs_with_failures": [_failure_entry(r) for r in failed_runs],
        "known_errors": _known_errors(rows),
        "runs_with_unknown_failures": len(unknown),
        "unknown_failure_runs": [_where(r) for r in unknown],
        "unclosed_blocks": len(unclosed),
        "unclosed_runs": [_where(r) for r in unclosed],
        "max_concurrency": max(
            (int(r["max_concurrency"]) for r in rows if r.get("max_concurrency")), default=None
        ),
        "gsm8k_runs": len(gsm8k or []),
    }


def _unclosed_note(summary: dict) -> str:
    """``; N result block(s) without the closing ===== line (where)``, or ``""``."""
    unclosed = summary.get("unclosed_blocks", 0)
    if not unclosed:
        return ""
    where = ", ".join(summary.get("unclosed_runs") or [])
    return (f"; {unclosed} result block(s) without the closing ===== line"
            + (f" ({where})" if where else ""))


def failed_sentence(summary: dict) -> str:
    """One line that says how many requests failed, red when any did.

    It says "0 failed" only when every run reported its failures (its own count, or prompts
    sent and successful requests); otherwise "unknown for N run(s)". Result blocks without their
    closing ``=====`` line are named too.
    """
    failed, runs = summary.get("failed_requests", 0), summary.get("runs", 0)
    truncated = summary.get("truncated_blocks", 0)
    total = summary.get("requests", 0)
    top = summary.get("max_concurrency")
    where = f", concurrency up to {top}" if top else ""
    unknown = summary.get("runs_with_unknown_failures", 0)
    unknown_note = (f"; failed requests unknown for {unknown} run(s) (they print neither failed "
                    "requests nor how many prompts they sent)") if unknown else ""
    unclosed = _unclosed_note(summary)
    if failed or truncated:
        text = f"{failed} failed request(s) of {total} in {runs} run(s){where}"
        if truncated:
            text += f"; {truncated} run(s) with a truncated result block"
        return red(text + unknown_note + unclosed)
    if unknown:
        known = runs - unknown
        text = f"failed requests unknown for {unknown} of {runs} run(s)"
        if known:
            text += f" (none in the other {known})"
        return text + " (they print neither failed requests nor how many prompts they sent)" \
            + unclosed
    return f"**0 failed requests** of {total} in {runs} run(s){where}{unclosed}."


def known_error_sentences(summary: dict) -> list[str]:
    """One line per known error and concurrency, with the router settings to look at.

    ``N requests failed with TransferEncodingError (400, not enough data for the transfer length
    header) at concurrency C``, in red, then ``: see router settings ...`` and the cause. Errors
    seen only outside ``output.error=`` lines say ``N occurrences of`` instead.
    """
    out = []
    for e in summary.get("known_errors") or []:
        con = e.get("max_concurrency")
        where = f" at concurrency {con}" if con is not None else ""
        what = f"{e['name']} ({e['description']})"
        if e.get("requests"):
            n = e["requests"]
            head = f"{n} request{'s' if n != 1 else ''} failed with {what}{where}"
        else:
            n = e.get("lines", 0)
            head = f"{n} occurrence{'s' if n != 1 else ''} of {what}{where}"
        out.append(f"{red(head)}: {e['hint']}")
    return out


def client_sentence(meta: object) -> str:
    """Where the benchmark clients ran, from a run's metadata (``meta["client"]``), or ``""``.

    The benchmark role writes ``controller`` or ``<host> (in image <ref>)``
    (``benchmark_client_host``); older documents have no such key and get no sentence.
    """
    client = meta.get("client") if isinstance(meta, dict) else None
    return f"Clients ran on: **{client}**" if client not in (None, "") else ""


def document_markdown(doc: dict, title: str = "Benchmark results") -> str:
    """``bench.md``: where the clients ran (when ``doc["meta"]`` says), the failed-request line,
    known errors, the sweep table, GSM8K, warnings."""
    parts = [f"# {title}", ""]
    client = client_sentence(doc.get("meta"))
    if client:
        parts += [client, ""]
    parts += [failed_sentence(doc["summary"]), ""]
    known = known_error_sentences(doc["summary"])
    if known:
        parts += [f"- {line}" for line in known] + [""]
    if doc.get("runs"):
        parts += ["## bench_serving runs", "", to_markdown(doc["runs"])]
    if doc.get("gsm8k"):
        parts += ["## GSM8K", "", gsm8k_markdown(doc["gsm8k"])]
    for w in doc["summary"].get("warnings", []):
        parts.append(f"- warning: {w}")
    return "\n".join(parts).rstrip() + "\n"
