# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE: read SGLang benchmark output and turn it into tables.

Pure logic, standard library only (used by the ``bench_parse`` module, the ``bench`` filters and
the ``pdbench`` CLI). Errors are ``ValueError`` with the source and line number.

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
  the next run's command line) is *truncated*: ``ValueError`` naming the last label read. A block
  whose closing line is missing but whose metrics are all there (e.g. pasted into Markdown) is
  accepted and marked ``closed: false``.
* Context before each block: the seed's markers (``[RUNNING] prompts N isl I osl O con C model M
  xP=x yD=y job=J``, ``RUNNING: prompts  isl I osl O con C``, ``... for iter: i``),
  bench_serving's own ``benchmark_args=Namespace(...)`` line, and ``output.error=`` lines.
* ``--output-file`` JSONL records, and GSM8K result lines (``Accuracy:``, ``Invalid:``,
  ``Latency: ... s``, ``Output throughput: ... token/s``).

Failed requests: a block's own ``Failed requests`` line if it has one, otherwise the number of
prompts of the run (marker or Namespace) minus ``Successful requests``; unknown (``None``) when
neither is known.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

BLOCK_TITLE = "Serving Benchmark Result"
_HEADER_RE = re.compile(r"^(?P<prefix>.*?)=+ ?Serving Benchmark Result ?=+\s*$")
_CLOSE_RE = re.compile(r"^={10,}\s*$")
_SECTION_RE = re.compile(r"^-{2,}\s*[A-Za-z][A-Za-z0-9 ()./-]*?\s*-{2,}\s*$")
_KV_RE = re.compile(r"^(?P<label>[A-Za-z][^:]{0,60}?):(?:\s+(?P<value>\S.*?))?\s*$")
_STAT_RE = re.compile(
    r"^(?P<stat>mean|median|std|max|min|p\d+(?:\.\d+)?) "
    r"(?P<metric>e2e latency|e2el|ttft|tpot|itl|ttst) \(ms\)$"
)
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
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
_ERROR_LINE_RE = re.compile(r"(?:^|\s)output\.error=")
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


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
def _number(text: str, kind: str, where: str) -> object:
    raw = text.strip()
    if kind == "str":
        return raw
    low = raw.lower()
    if kind == "int_or_none" and low in ("not set", "none", "unlimited"):
        return None
    if kind == "rate":
        if low in ("inf", "infinity"):
            return math.inf
        if low == "trace":
            return "trace"
    cleaned = raw.replace(",", "")
    try:
        if kind in ("int", "int_or_none"):
            value = float(cleaned)
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)
        return float(cleaned)
    except ValueError:
        raise ValueError(f"{where}: {raw!r} is not a number") from None


def _key_for(label: str) -> tuple[str, str] | None:
    norm = " ".join(label.lower().split()).replace("reqeuest", "request")
    norm = norm.replace("maximum request concurrency", "max request concurrency")
    if norm in _LABELS:
        return _LABELS[norm]
    m = _STAT_RE.match(norm)
    if m:
        return f"{m.group('stat')}_{_METRIC_KEYS[m.group('metric')]}_ms", "float"
    return None


def _clean_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) pairs: ANSI removed, ``\\r``-separated tqdm frames split apart."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = _ANSI_RE.sub("", line)
        for part in line.split("\r"):
            if part.strip():
                out.append((number, part.rstrip()))
    return out


def _marker(line: str) -> dict | None:
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


def _namespace(line: str) -> dict | None:
    m = _NAMESPACE_RE.search(line.strip())
    if not m:
        return None
    body = m.group("body")
    out: dict[str, object] = {}
    for key in _NS_KEYS:
        km = re.search(rf"(?:^|, ){key}=(?P<v>'[^']*'|[^,]*)", body)
        if not km:
            continue
        raw = km.group("v").strip()
        if raw.startswith("'"):
            out[key] = raw.strip("'")
        elif raw == "None":
            out[key] = None
        elif raw == "inf":
            out[key] = math.inf
        else:
            try:
                out[key] = int(raw)
            except ValueError:
                try:
                    out[key] = float(raw)
                except ValueError:
                    out[key] = raw
    return out


# --------------------------------------------------------------------------------------------
# bench_serving text
# --------------------------------------------------------------------------------------------
class _Block:
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
        known = _key_for(m.group("label")) if m else None
        if not known:
            self.noise += 1
            return False
        key, kind = known
        if m.group("value") is None:
            self.cut = m.group("label")
            self.last_line = number
            return False
        self.values[key] = _number(m.group("value"), kind, f"{self.source}:{number}")
        self.last_label = m.group("label")
        self.last_line = number
        self.cut = None
        return False

    def finish(self, closed: bool) -> dict:
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


def _parse_serving(text: str, source: str = "<text>", strict: bool = True) -> list[dict]:
    """Every result block of one log, with the context of the run that printed it.

    ``strict``: a truncated block raises ``ValueError``; otherwise it becomes a row with an
    ``error`` key (and no metrics), so one killed run does not hide the others.
    """
    rows: list[dict] = []
    ctx: dict[str, object] = {}
    iteration: object = None
    errors = 0
    block: _Block | None = None

    def emit(closed: bool) -> None:
        nonlocal block, ctx, errors
        assert block is not None
        try:
            row = block.finish(closed)
        except ValueError as exc:
            if strict:
                raise
            row = {"source": block.source, "line": block.line, "error": str(exc)}
        rows.append(_with_context(row, ctx, iteration, errors))
        block, ctx, errors = None, {}, 0

    for number, line in _clean_lines(text):
        header = _HEADER_RE.match(line)
        if header:
            if block is not None:
                emit(False)
            block = _Block(source, number, header.group("prefix"))
            continue
        stripped = line.strip()
        if block is not None and block.prefix and line.startswith(block.prefix):
            stripped = line[len(block.prefix) :].strip()
        mark = _marker(stripped)
        ns = None if mark else _namespace(stripped)
        it = None if mark or ns else _ITER_RE.search(stripped)
        if block is not None and (mark or ns or it):
            emit(False)  # the next run started: the open block never got its closing line
        if mark:
            ctx = {k: v for k, v in ctx.items() if k.startswith("ns_")}
            ctx.update(mark)
            if "iteration" in mark:
                iteration = mark["iteration"]
            continue
        if ns is not None:
            ctx.update({f"ns_{k}": v for k, v in ns.items()})
            continue
        if it:
            iteration = int(it.group("iter"))
            continue
        if block is not None:
            if block.feed(number, line):
                emit(True)
            continue
        if _ERROR_LINE_RE.search(stripped):
            errors += 1
            continue
        group = _GROUP_RE.search(stripped)
        if group:
            ctx["prompts_per_group"] = int(group.group("n"))
    if block is not None:
        emit(False)
    if any(r.get("iteration") is not None for r in rows):
        for r in rows:
            if r.get("iteration") is not None:
                break
            r["warmup"] = True  # the seed's "Test run:" before "... for iter: 1"
    return rows


def _with_context(row: dict, ctx: dict, iteration: object, errors: int) -> dict:
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
        _fill_failed(out)
    return out


def _fill_failed(row: dict) -> None:
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
def _parse_jsonl(text: str, source: str = "<jsonl>") -> list[dict]:
    """bench_serving ``--output-file`` records (one JSON object a line) in our keys."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: not JSON ({exc})") from None
        if not isinstance(rec, dict) or "completed" not in rec or "duration" not in rec:
            raise ValueError(
                f"{source}:{number}: not a bench_serving result record (no 'completed'/'duration')"
            )
        row: dict[str, object] = {"source": source, "line": number}
        for key, value in rec.items():
            if key in ("input_lens", "output_lens", "ttfts", "itls", "generated_texts"):
                continue
            if key == "errors" and isinstance(value, list):
                row["requests_sent"] = len(value)
                row["failed_requests"] = sum(1 for e in value if e)
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
        rows.append(row)
    return rows


def _is_bench_jsonl(text: str) -> bool:
    """Whether the first record of a JSONL file is a bench_serving result record."""
    for line in text.splitlines():
        if line.strip():
            try:
                rec = json.loads(line)
            except ValueError:
                return True  # let _parse_jsonl report the bad line
            return isinstance(rec, dict) and "completed" in rec and "duration" in rec
    return False


def _printed(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _merge(text_row: dict, jsonl_row: dict) -> dict:
    """One run seen twice: printed values win, the record adds what the block does not print.

    ``mismatches`` lists keys whose record value does not print as the block's value (the block
    prints ``{:.2f}``), i.e. the two are not the same run.
    """
    out = dict(jsonl_row)
    out.update(text_row)
    if "total_throughput" in text_row:
        out.pop("total_throughput_derived", None)
    out["jsonl_source"] = f"{jsonl_row['source']}:{jsonl_row['line']}"
    mismatches = []
    for key, value in text_row.items():
        if key not in jsonl_row or key in ("source", "line") or value is None:
            continue
        other = jsonl_row[key]
        if isinstance(value, float) and isinstance(other, int | float):
            if _printed(float(other)) != _printed(value) and not (
                math.isinf(value) and math.isinf(float(other))
            ):
                mismatches.append(key)
        elif isinstance(value, int) and isinstance(other, int | float):
            if int(other) != value:
                mismatches.append(key)
    out["mismatches"] = mismatches
    return out


# --------------------------------------------------------------------------------------------
# GSM8K
# --------------------------------------------------------------------------------------------
_GSM_RE = {
    "accuracy": re.compile(r"^Accuracy:\s*(?P<v>-?[0-9.]+)\s*$"),
    "invalid": re.compile(r"^Invalid:\s*(?P<v>-?[0-9.]+)\s*$"),
    "latency_s": re.compile(r"^Latency:\s*(?P<v>[0-9.]+)\s*s\s*$"),
    "output_throughput": re.compile(r"^Output throughput:\s*(?P<v>[0-9.]+)\s*token/s\s*$"),
    "num_questions": re.compile(r"^Questions:\s*(?P<v>\d+)\s*$"),
    "num_shots": re.compile(r"^Shots:\s*(?P<v>\d+)\s*$"),
    "failed_requests": re.compile(r"^Failed requests:\s*(?P<v>\d+)\s*$"),
}


def _parse_gsm8k(text: str, source: str = "<text>") -> list[dict]:
    """GSM8K result groups: an ``Accuracy:`` line and the result lines within 8 lines of it."""
    rows: list[dict] = []
    current: dict | None = None
    for number, line in _clean_lines(text):
        body = line.strip()
        m = _GSM_RE["accuracy"].match(body)
        if m:
            current = {"accuracy": float(m.group("v")), "source": source, "line": number}
            rows.append(current)
            continue
        if current is None or number - current["line"] > 8:
            continue
        for key, rx in _GSM_RE.items():
            mm = rx.match(body)
            if mm and key not in current:
                v = mm.group("v")
                current[key] = (
                    int(v) if key.startswith("num_") or key == "failed_requests" else float(v)
                )
                break
    return rows


# --------------------------------------------------------------------------------------------
# the sweep plan (role) and tables
# --------------------------------------------------------------------------------------------
def _prompts_for(concurrency: int, factor: int = 2, minimum: int = 16) -> int:
    """The seed's prompt count for a concurrency: ``max(minimum, factor x concurrency)``."""
    if int(concurrency) < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    return max(int(minimum), int(factor) * int(concurrency))


def _sweep_points(
    concurrencies: list, presets: list, iterations: int = 1, factor: int = 2, minimum: int = 16
) -> list[dict]:
    """Every bench_serving run of a sweep, in the order the seed runs them.

    ``presets``: ``[{"name": "1k1k", "isl": 1024, "osl": 1024}, ...]``; iterations outermost,
    then presets, then concurrencies (seed: ``for i; for combo; for con``).
    """
    if not concurrencies:
        raise ValueError("the concurrency list is empty")
    if not presets:
        raise ValueError("the preset list is empty")
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations!r}")
    names = set()
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
    cons = []
    for c in concurrencies:
        if isinstance(c, bool) or int(c) != c or int(c) < 1:
            raise ValueError(f"concurrency {c!r} is not a positive integer")
        cons.append(int(c))
    return [
        {
            "iteration": it,
            "preset": p["name"],
            "isl": p["isl"],
            "osl": p["osl"],
            "concurrency": c,
            "num_prompts": _prompts_for(c, factor, minimum),
            "id": f"{p['name']}/iter{it}_con{c}",
        }
        for it in range(1, int(iterations) + 1)
        for p in checked
        for c in cons
    ]


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


def _cell(row: dict, key: str) -> object:
    if key == "xp_yd":
        return f"{row['xp']}p{row['yd']}d" if "xp" in row and "yd" in row else None
    value = row.get(key)
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return value


def _to_csv(rows: list[dict]) -> str:
    """CSV with :data:`COLUMNS`; numbers unformatted (as parsed), empty where unknown."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c for c, _ in COLUMNS])
    for row in rows:
        writer.writerow(["" if (v := _cell(row, k)) is None else v for _, k in COLUMNS])
    return buf.getvalue()


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def _trio(row: dict, metric: str) -> str:
    parts = [
        row.get(f"mean_{metric}_ms"),
        row.get(f"median_{metric}_ms"),
        row.get(f"p99_{metric}_ms"),
    ]
    return " / ".join(_fmt(p) for p in parts)


def _red(text: str) -> str:
    return f'<span style="color:red">**{text}**</span>'


def _failed_cell(row: dict) -> str:
    if row.get("error"):
        return _red("truncated")
    failed = row.get("failed_requests")
    if failed is None:
        return "?"
    return _red(f"{failed} FAILED") if failed else "0"


def _to_markdown(rows: list[dict]) -> str:
    """A Markdown table of the runs; failed requests and truncated blocks in red."""
    head = [
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
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        preset = str(r.get("preset") or r.get("model") or "")
        if r.get("iteration") is not None:
            preset += f" #{r['iteration']}"
        cells = [
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
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _summary(rows: list[dict], gsm8k: list[dict] | None = None) -> dict:
    """Totals: runs, requests, failed requests, and which runs failed or were truncated."""
    failed_runs = [r for r in rows if r.get("error") or r.get("failed_requests")]
    unknown = [r for r in rows if not r.get("error") and r.get("failed_requests") is None]
    return {
        "runs": len(rows),
        "requests": sum(
            int(r.get("num_prompts") or r.get("successful_requests") or 0) for r in rows
        ),
        "successful_requests": sum(int(r.get("successful_requests") or 0) for r in rows),
        "failed_requests": sum(int(r.get("failed_requests") or 0) for r in rows),
        "truncated_blocks": sum(1 for r in rows if r.get("error")),
        "runs_with_failures": [
            {
                "source": r.get("source"),
                "line": r.get("line"),
                "preset": r.get("preset"),
                "max_concurrency": r.get("max_concurrency"),
                "failed_requests": r.get("failed_requests"),
                "error": r.get("error"),
            }
            for r in failed_runs
        ],
        "runs_with_unknown_failures": len(unknown),
        "max_concurrency": max(
            (int(r["max_concurrency"]) for r in rows if r.get("max_concurrency")), default=None
        ),
        "gsm8k_runs": len(gsm8k or []),
    }


def _json_safe(value: object) -> object:
    """Replace non-finite floats (``request_rate: inf``) so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _run_order(row: dict) -> tuple:
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


def _collect(files: list[tuple[str, str]], strict: bool = True) -> dict:
    """Parse many files at once: ``[(name, text), ...]`` -> rows, gsm8k rows, summary.

    ``*.jsonl`` files are bench_serving records; a record and a log with the same name stem
    (``con8.log`` + ``con8.jsonl``) are the same runs and are merged in order.
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
            if not _is_bench_jsonl(text):
                skipped.append(name)
                continue
            records.setdefault(stem, []).extend(_parse_jsonl(text, name))
        else:
            parsed = _parse_serving(text, name, strict=strict)
            warmup.extend(r for r in parsed if r.get("warmup"))
            logs.setdefault(stem, []).extend(r for r in parsed if not r.get("warmup"))
            gsm8k.extend(_parse_gsm8k(text, name))
    rows: list[dict] = []
    warnings: list[str] = []
    for stem in order:
        text_rows, recs = logs.get(stem, []), records.get(stem, [])
        ok = [r for r in text_rows if not r.get("error")]
        if recs and len(recs) == len(ok):
            merged = iter([_merge(t, j) for t, j in zip(ok, recs, strict=True)])
            rows.extend(next(merged) if not r.get("error") else r for r in text_rows)
            for row in rows[-len(text_rows) :]:
                if row.get("mismatches"):
                    warnings.append(
                        f"{row['source']}:{row['line']} and {row['jsonl_source']} "
                        f"disagree on {', '.join(row['mismatches'])}"
                    )
        elif text_rows:
            rows.extend(text_rows)
            if recs:
                warnings.append(
                    f"{stem}: {len(recs)} JSONL record(s) for {len(ok)} result "
                    "block(s); the records were not merged"
                )
        else:
            for rec in recs:
                _fill_failed(rec)
            rows.extend(recs)
    rows.sort(key=_run_order)
    summary = _summary(rows, gsm8k)
    summary["warnings"] = warnings
    summary["skipped_files"] = skipped
    summary["warmup_runs"] = len(warmup)
    return {"runs": rows, "gsm8k": gsm8k, "warmup": warmup, "summary": summary}


def _gsm8k_markdown(rows: list[dict]) -> str:
    """A Markdown table of GSM8K results."""
    head = [
        "Source",
        "Questions",
        "Shots",
        "Accuracy",
        "Invalid",
        "Latency (s)",
        "Output tok/s",
        "Failed requests",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        failed = r.get("failed_requests")
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{r.get('source')}:{r.get('line')}",
                    _fmt(r.get("num_questions")),
                    _fmt(r.get("num_shots")),
                    _fmt(r.get("accuracy"), 3),
                    _fmt(r.get("invalid"), 3),
                    _fmt(r.get("latency_s"), 3),
                    _fmt(r.get("output_throughput"), 3),
                    _red(f"{failed} FAILED") if failed else _fmt(failed),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _failed_sentence(summary: dict) -> str:
    """One line that says how many requests failed, red when any did."""
    failed, runs = summary.get("failed_requests", 0), summary.get("runs", 0)
    truncated = summary.get("truncated_blocks", 0)
    total = summary.get("requests", 0)
    top = summary.get("max_concurrency")
    where = f", concurrency up to {top}" if top else ""
    if failed or truncated:
        text = f"{failed} failed request(s) of {total} in {runs} run(s){where}"
        if truncated:
            text += f"; {truncated} run(s) with a truncated result block"
        return _red(text)
    unknown = summary.get("runs_with_unknown_failures", 0)
    if unknown:
        return (
            f"{unknown} of {runs} run(s) do not say how many prompts they sent, so failed "
            "requests are unknown for them"
        )
    return f"**0 failed requests** of {total} in {runs} run(s){where}."


def _document_markdown(doc: dict, title: str = "Benchmark results") -> str:
    """``bench.md``: the failed-request line, the sweep table, the GSM8K table."""
    parts = [f"# {title}", "", _failed_sentence(doc["summary"]), ""]
    if doc.get("runs"):
        parts += ["## bench_serving runs", "", _to_markdown(doc["runs"])]
    if doc.get("gsm8k"):
        parts += ["## GSM8K", "", _gsm8k_markdown(doc["gsm8k"])]
    for w in doc["summary"].get("warnings", []):
        parts.append(f"- warning: {w}")
    return "\n".join(parts).rstrip() + "\n"
