# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""bench_serving results: the printed result blocks and the ``--output-file`` JSONL records.

What it reads:

* ``python -m sglang.bench_serving`` result blocks, the text between
  ``============ Serving Benchmark Result ============`` and the closing line of ``=``. The labels
  changed over SGLang versions (0.3: ``Total throughput (tok/s)`` and a TPOT section; 0.4.0-0.4.x:
  the ``Max reqeuest concurrency`` typo; 0.4.x/0.5.x: ``Concurrency``, ``P95/Max ITL``, no TPOT
  section; later 0.5.x: ``Peak output token throughput``, text/vision input tokens, TPOT back,
  ``P90/P95/P99 E2E Latency``; vLLM's block: ``Failed requests``, ``Maximum request concurrency``).
  Known labels map to one set of keys (the ``--output-file`` JSONL names); the ``Mean/Median/Pnn/
  Std/Max <metric> (ms)`` family is matched by pattern, so new percentiles need no code change.
* Interleaved noise is skipped: log lines of other processes, tqdm bars (``\\r``), ANSI colours, a
  prefix repeated on every line (``# ``, ``node0| ``) taken from the header line.
* A block that ends before its closing line and before its core metrics (EOF, the next block,
  the next run's command line) is *truncated*: ``ValueError`` naming the file, the line of the
  block and the last label read. A block whose closing line is missing but whose metrics are all
  there (e.g. pasted into Markdown) is accepted and marked ``closed: false``.
* Context before each block: the seed's markers (``[RUNNING] prompts N isl I osl O con C model M
  xP=x yD=y job=J``, ``RUNNING: prompts  isl I osl O con C``, ``... for iter: i``),
  bench_serving's own ``benchmark_args=Namespace(...)`` line, and ``output.error=`` lines
  (``error_lines``, all of them) with the known errors among them and in tracebacks
  (``known_errors``, :mod:`.errors`).
* ``--output-file`` JSONL records (one JSON object a line), renamed to the same keys.

Failed requests: a block's own ``Failed requests`` line if it has one, otherwise the number of
prompts of the run (marker or Namespace) minus ``Successful requests``; unknown (``None``) when
neither is known.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import ErrorTally, count_known_errors
from .text import clean_lines, parse_number

BLOCK_TITLE = "Serving Benchmark Result"
_HEADER_RE = re.compile(r"^(?P<prefix>.*?)=+ ?Serving Benchmark Result ?=+\s*$")
_CLOSE_RE = re.compile(r"^={10,}\s*$")
_SECTION_RE = re.compile(r"^-{2,}\s*[A-Za-z][A-Za-z0-9 ()./-]*?\s*-{2,}\s*$")
_KV_RE = re.compile(r"^(?P<label>[A-Za-z][^:]{0,60}?):(?:\s+(?P<value>\S.*?))?\s*$")
_STAT_RE = re.compile(
    r"^(?P<stat>mean|median|std|max|min|p\d+(?:\.\d+)?) "
    r"(?P<metric>e2e latency|e2el|ttft|tpot|itl|ttst) \(ms\)$"
)
_E1_MARK_RE = re.compile(
    r"\[RUNNING\]\s+prompts\s*(?P<prompts>\d+)?\s+isl\s+(?P<isl>\d+)\s+osl\s+(?P<osl>\d+)"
    r"\s+con\s+(?P<con>\d+)(?P<rest>.*)$"
)
_E2_MARK_RE = re.compile(
    r"RUNNING:\s+prompts\s*(?P<prompts>\d+)?\s+isl\s+(?P<isl>\d+)\s+osl\s+(?P<osl>\d+)"
    r"\s+con\s+(?P<con>\d+)(?P<rest>.*)$"
)
_ITER_RE = re.compile(r"benchserving script for iter:\s*(?P<iter>\d+)", re.IGNORECASE)
_REST_KV_RE = re.compile(r"(?:^|\s)(?P<key>model|xP|yD|job|preset|iter)[=\s](?P<value>\S+)")
_NAMESPACE_RE = re.compile(r"(?:^|\s|benchmark_args=)Namespace\((?P<body>.*)\)\s*$")
_NS_KEYS = (
    "backend",
    "dataset_name",
    "model",
    "num_prompts",
    "max_concurrency",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "request_rate",
    "warmup_requests",
    "gsp_prompts_per_group",
)
_GROUP_RE = re.compile(r"(?:^|\s)Prompts per group:\s*(?P<n>\d+)")

_LABELS: dict[str, tuple[str, str]] = {
    "backend": ("backend", "str"),
    "traffic request rate": ("request_rate", "rate"),
    "max request concurrency": ("max_concurrency", "int_or_none"),
    "successful requests": ("successful_requests", "int"),
    "failed requests": ("failed_requests", "int"),
    "benchmark duration (s)": ("duration_s", "float"),
    "total input tokens": ("total_input_tokens", "int"),
    "total input text tokens": ("total_input_text_tokens", "int"),
    "total input vision tokens": ("total_input_vision_tokens", "int"),
    "total generated tokens": ("total_output_tokens", "int"),
    "total generated tokens (retokenized)": ("total_output_tokens_retokenized", "int"),
    "request throughput (req/s)": ("request_throughput", "float"),
    "input token throughput (tok/s)": ("input_throughput", "float"),
    "output token throughput (tok/s)": ("output_throughput", "float"),
    "peak output token throughput (tok/s)": ("peak_output_throughput", "float"),
    "peak concurrent requests": ("peak_concurrent_requests", "float"),
    "total token throughput (tok/s)": ("total_throughput", "float"),
    "total throughput (tok/s)": ("total_throughput", "float"),
    "concurrency": ("measured_concurrency", "float"),
    "accept length": ("accept_length", "float"),
}
_METRIC_KEYS = {
    "e2e latency": "e2e_latency",
    "e2el": "e2e_latency",
    "ttft": "ttft",
    "tpot": "tpot",
    "itl": "itl",
    "ttst": "ttst",
}
# What a block must have to count as complete when its closing line is missing.
REQUIRED = (
    "successful_requests",
    "duration_s",
    "total_output_tokens",
    "request_throughput",
    "output_throughput",
    "mean_ttft_ms",
    "median_ttft_ms",
    "mean_itl_ms",
    "median_itl_ms",
)
# bench_serving --output-file record keys -> our keys (the rest are already ours).
_JSONL_RENAME = {
    "duration": "duration_s",
    "completed": "successful_requests",
    "concurrency": "measured_concurrency",
    "random_input_len": "isl",
    "random_output_len": "osl",
}
_JSONL_KEEP = (
    "backend",
    "dataset_name",
    "request_rate",
    "max_concurrency",
    "random_range_ratio",
    "total_input_tokens",
    "total_input_text_tokens",
    "total_input_vision_tokens",
    "total_output_tokens",
    "total_output_tokens_retokenized",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "accept_length",
)
_JSONL_DROP = ("input_lens", "output_lens", "ttfts", "itls", "generated_texts")


# --------------------------------------------------------------------------------------------
# labels and context lines
# --------------------------------------------------------------------------------------------
def key_for(label: str) -> tuple[str, str] | None:
    """``(key, kind)`` for a result block label (``None`` when it is not a known label).

    Labels are matched case- and space-insensitively, with SGLang's ``reqeuest`` typo and
    vLLM's ``Maximum request concurrency``; ``Mean/Median/Std/Max/Pnn <metric> (ms)`` give
    ``<stat>_<metric>_ms``. ``kind`` is a :func:`parse_number` kind.
    """
    norm = " ".join(label.lower().split()).replace("reqeuest", "request")
    norm = norm.replace("maximum request concurrency", "max request concurrency")
    if norm in _LABELS:
        return _LABELS[norm]
    m = _STAT_RE.match(norm)
    if m:
        return f"{m.group('stat')}_{_METRIC_KEYS[m.group('metric')]}_ms", "float"
    return None


def _marker(line: str) -> dict | None:
    """The run context of a seed marker line (``[RUNNING] ...`` or ``RUNNING: ...``)."""
    m = _E1_MARK_RE.search(line) or _E2_MARK_RE.search(line)
    if not m:
        return None
    ctx: dict[str, object] = {
        "isl": int(m.group("isl")),
        "osl": int(m.group("osl")),
        "max_concurrency": int(m.group("con")),
    }
    if m.group("prompts"):
        ctx["num_prompts"] = int(m.group("prompts"))
    for kv in _REST_KV_RE.finditer(m.group("rest") or ""):
        key, value = kv.group("key"), kv.group("value")
        if key == "iter":
            ctx["iteration"] = int(value) if value.isdigit() else value
        elif key in ("xP", "yD"):
            ctx[key.lower()] = int(value) if value.isdigit() else value
        else:
            ctx[key] = value
    return ctx


def _namespace_value(raw: str) -> object:
    """A Python repr from ``Namespace(...)``: quoted string, None, inf, int, float or text."""
    if raw.startswith("'"):
        return raw.strip("'")
    if raw == "None":
        return None
    if raw == "inf":
        return math.inf
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _namespace(line: str) -> dict | None:
    """The known arguments of bench_serving's ``benchmark_args=Namespace(...)`` line."""
    m = _NAMESPACE_RE.search(line.strip())
    if not m:
        return None
    body = m.group("body")
    out: dict[str, object] = {}
    for key in _NS_KEYS:
        km = re.search(rf"(?:^|, ){key}=(?P<v>'[^']*'|[^,]*)", body)
        if km:
            out[key] = _namespace_value(km.group("v").strip())
    return out


# --------------------------------------------------------------------------------------------
# bench_serving text
# --------------------------------------------------------------------------------------------
class _Block:
    """One result block being read: its values, where it started, the last label seen."""

    def __init__(self, source: str, line: int, prefix: str) -> None:
        self.source = source
        self.line = line
        self.prefix = prefix
        self.values: dict[str, object] = {}
        self.last_label = BLOCK_TITLE
        self.last_line = line
        self.cut: str | None = None
        self.noise = 0

    def where(self) -> str:
        """``source:line`` of the block's header."""
        return f"{self.source}:{self.line}"

    def feed(self, number: int, line: str) -> bool:
        """Take one line; True when it closed the block."""
        if self.prefix and line.startswith(self.prefix):
            line = line[len(self.prefix) :]
        body = line.strip()
        if _CLOSE_RE.match(body):
            return True
        if _SECTION_RE.match(body):
            return False
        m = _KV_RE.match(body)
        known = key_for(m.group("label")) if m else None
        if not m or not known:
            self.noise += 1
            return False
        key, kind = known
        if m.group("value") is None:
            self.cut = m.group("label")
            self.last_line = number
            return False
        self.values[key] = parse_number(m.group("value"), kind, f"{self.source}:{number}")
        self.last_label = m.group("label")
        self.last_line = number
        self.cut = None
        return False

    def finish(self, closed: bool) -> dict:
        """The block's row; ``ValueError`` when it is truncated or incomplete."""
        missing = [k for k in REQUIRED if k not in self.values]
        if self.cut is not None or (missing and not closed):
            after = self.cut or self.last_label
            raise ValueError(
                f"truncated '{BLOCK_TITLE}' block at {self.where()}: it stops after "
                f"'{after}:' (line {self.last_line}) without its closing '=====' line; "
                f"missing {', '.join(missing) or 'the value of ' + repr(after)}"
            )
        if missing:
            raise ValueError(
                f"incomplete '{BLOCK_TITLE}' block at {self.where()}: missing {', '.join(missing)}"
            )
        return dict(
            self.values, source=self.source, line=self.line, closed=closed, noise_lines=self.noise
        )


class _ServingReader:
    """Reads one log line by line: context lines, result blocks, rows with their context."""

    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict
        self.rows: list[dict] = []
        self.ctx: dict[str, object] = {}
        self.iteration: object = None
        self.errors = 0
        self.tally = ErrorTally()
        self.block: _Block | None = None

    def emit(self, closed: bool) -> None:
        """Turn the open block into a row (an ``error`` row when not strict)."""
        block = self.block
        if block is None:
            return
        try:
            row = block.finish(closed)
        except ValueError as exc:
            if self.strict:
                raise
            row = {"source": block.source, "line": block.line, "error": str(exc)}
        row = _with_context(row, self.ctx, self.iteration, self.errors)
        row["known_errors"] = self.tally.counts()
        self.rows.append(row)
        self.block, self.ctx, self.errors, self.tally = None, {}, 0, ErrorTally()

    def take(self, number: int, line: str) -> None:
        """One cleaned line of the log."""
        header = _HEADER_RE.match(line)
        if header:
            if self.block is not None:
                self.emit(False)
            self.block = _Block(self.source, number, header.group("prefix"))
            return
        stripped = line.strip()
        if self.block is not None and self.block.prefix and line.startswith(self.block.prefix):
            stripped = line[len(self.block.prefix) :].strip()
        if self._context(stripped):
            return
        if self.block is not None:
            if self.block.feed(number, line):
                self.emit(True)
            return
        if self.tally.feed(line):
            self.errors += 1  # an output.error= line (known error or not)
            return
        group = _GROUP_RE.search(stripped)
        if group:
            self.ctx["prompts_per_group"] = int(group.group("n"))

    def _context(self, stripped: str) -> bool:
        """Take a marker, Namespace or iteration line; True when the line was one."""
        mark = _marker(stripped)
        ns = None if mark else _namespace(stripped)
        it = None if mark or ns else _ITER_RE.search(stripped)
        if not (mark or ns is not None or it):
            return False
        if self.block is not None and (mark or ns or it):
            self.emit(False)  # the next run started: the open block never got its closing line
        if mark:
            self.ctx = {k: v for k, v in self.ctx.items() if k.startswith("ns_")}
            self.ctx.update(mark)
            if "iteration" in mark:
                self.iteration = mark["iteration"]
        elif ns is not None:
            self.ctx.update({f"ns_{k}": v for k, v in ns.items()})
        elif it:
            self.iteration = int(it.group("iter"))
        return True

    def finish(self) -> list[dict]:
        """All rows; runs before the first ``... for iter:`` are marked ``warmup``."""
        if self.block is not None:
            self.emit(False)
        if any(r.get("iteration") is not None for r in self.rows):
            for r in self.rows:
                if r.get("iteration") is not None:
                    break
                r["warmup"] = True  # the seed's "Test run:" before "... for iter: 1"
        return self.rows


def parse_serving(text: str, source: str = "<text>", strict: bool = True) -> list[dict]:
    """Every result block of one log, with the context of the run that printed it.

    ``strict``: a truncated block raises ``ValueError`` (with ``source`` and the line numbers);
    otherwise it becomes a row with an ``error`` key (and no metrics), so one killed run does
    not hide the others.
    """
    reader = _ServingReader(source, strict)
    for number, line in clean_lines(text):
        reader.take(number, line)
    return reader.finish()


def _with_context(row: dict, ctx: dict, iteration: object, errors: int) -> dict:
    """A block's row plus its run context (marker first, then bench_serving's Namespace)."""
    out = dict(row)
    ns = {k[3:]: v for k, v in ctx.items() if k.startswith("ns_")}
    if "isl" in ctx:
        out["isl"], out["osl"] = ctx["isl"], ctx["osl"]
    elif str(ns.get("dataset_name", "")).startswith("random"):
        out["isl"], out["osl"] = ns.get("random_input_len"), ns.get("random_output_len")
    if "max_concurrency" in ctx:
        out["max_concurrency"] = ctx["max_concurrency"]
    elif ns.get("max_concurrency") is not None:
        out["max_concurrency"] = ns["max_concurrency"]
    prompts = ctx.get("num_prompts", ns.get("num_prompts"))
    if prompts is not None:
        out["num_prompts"] = prompts
    for key in ("model", "xp", "yd", "job", "preset", "prompts_per_group"):
        if key in ctx:
            out[key] = ctx[key]
    if "model" not in out and ns.get("model"):
        out["model"] = ns["model"]
    for key in ("dataset_name", "random_range_ratio"):
        if key in ns:
            out.setdefault(key, ns[key])
    if "backend" not in out and "backend" in ns:
        out["backend"] = ns["backend"]
    if iteration is not None:
        out["iteration"] = iteration
    out["error_lines"] = errors
    if "error" not in out:
        fill_failed(out)
    return out


def fill_failed(row: dict) -> None:
    """Set ``failed_requests`` and ``failed_source`` (``block``, ``num_prompts`` or ``None``).

    The block's own count wins; otherwise prompts minus successful requests; otherwise unknown.
    """
    if row.get("failed_requests") is not None:
        row["failed_source"] = "block"
    elif row.get("num_prompts") is not None and row.get("successful_requests") is not None:
        row["failed_requests"] = max(0, int(row["num_prompts"]) - int(row["successful_requests"]))
        row["failed_source"] = "num_prompts"
    else:
        row["failed_requests"] = None
        row["failed_source"] = None


# --------------------------------------------------------------------------------------------
# --output-file JSONL
# --------------------------------------------------------------------------------------------
def _is_record(rec: object) -> bool:
    """Whether a decoded JSON value is a bench_serving result record."""
    return isinstance(rec, dict) and "completed" in rec and "duration" in rec


def _record_row(rec: dict, source: str, number: int) -> dict:
    """One record in our keys; per-request arrays dropped, ``errors`` counted."""
    row: dict[str, Any] = {"source": source, "line": number}  # JSON values
    for key, value in rec.items():
        if key in _JSONL_DROP:
            continue
        if key == "errors" and isinstance(value, list):
            row["requests_sent"] = len(value)
            row["failed_requests"] = sum(1 for e in value if e)
            row["known_errors"] = count_known_errors(value)
            continue
        if key in _JSONL_RENAME:
            row[_JSONL_RENAME[key]] = value
        elif key in _JSONL_KEEP or key.endswith("_ms"):
            row[key] = value
    if not str(rec.get("dataset_name", "random")).startswith("random"):
        row.pop("isl", None)
        row.pop("osl", None)
    if row.get("total_throughput") is None and row.get("duration_s"):
        row["total_throughput"] = (
            row.get("total_input_tokens", 0) + row.get("total_output_tokens", 0)
        ) / row["duration_s"]
        row["total_throughput_derived"] = True
    return row


def parse_jsonl(text: str, source: str = "<jsonl>") -> list[dict]:
    """bench_serving ``--output-file`` records (one JSON object a line) in our keys.

    Raises:
        ValueError: ``"<source>:<line>: not JSON ..."`` or ``"... not a bench_serving result
            record ..."``.
    """
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: not JSON ({exc})") from None
        if not _is_record(rec):
            raise ValueError(
                f"{source}:{number}: not a bench_serving result record (no 'completed'/'duration')"
            )
        rows.append(_record_row(rec, source, number))
    return rows


def is_bench_jsonl(text: str) -> bool:
    """Whether the first record of a JSONL file is a bench_serving result record.

    A first line that is not JSON counts as one, so that :func:`parse_jsonl` reports it.
    """
    for line in text.splitlines():
        if line.strip():
            try:
                rec = json.loads(line)
            except ValueError:
                return True
            return _is_record(rec)
    return False


def _printed(value: object) -> str:
    """A value the way bench_serving prints it (floats with 2 decimals)."""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _disagrees(value: object, other: object) -> bool:
    """Whether a record value does not print as the block's value."""
    if isinstance(value, float) and isinstance(other, int | float):
        both_inf = math.isinf(value) and math.isinf(float(other))
        return _printed(float(other)) != _printed(value) and not both_inf
    if isinstance(value, int) and isinstance(other, int | float):
        return int(other) != value
    return False


def merge_record(text_row: dict, jsonl_row: dict) -> dict:
    """One run seen twice: printed values win, the record adds what the block does not print.

    ``mismatches`` lists keys whose record value does not print as the block's value (the block
    prints ``{:.2f}``), i.e. the two are not the same run; ``jsonl_source`` is the record's
    ``source:line``.
    """
    out = dict(jsonl_row)
    out.update(text_row)
    if not text_row.get("known_errors") and jsonl_row.get("known_errors"):
        out["known_errors"] = jsonl_row["known_errors"]  # --output-details, nothing printed
    if "total_throughput" in text_row:
        out.pop("total_throughput_derived", None)
    out["jsonl_source"] = f"{jsonl_row['source']}:{jsonl_row['line']}"
    out["mismatches"] = [
        key
        for key, value in text_row.items()
        if key in jsonl_row
        and key not in ("source", "line")
        and value is not None
        and _disagrees(value, jsonl_row[key])
    ]
    return out
