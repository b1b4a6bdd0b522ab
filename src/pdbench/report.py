"""Plots and the Markdown report of one benchmark run directory.

Input: ``bench.json`` (written by ``pdbench parse`` or the ``bench_parse`` module). Output, next
to it unless ``--out`` says otherwise:

* ``throughput_vs_concurrency.png``: output token throughput against concurrency, one line per
  preset (ISL/OSL);
* ``latency_vs_concurrency.png``: TTFT and ITL, median (solid) and p99 (dashed), against
  concurrency;
* ``throughput_vs_latency.png``: output throughput against median end-to-end latency, each point
  labelled with its concurrency;
* ``report.md`` embedding them, with the failed-request line, the known request errors (named,
  counted per concurrency, with the router settings to look at), the tables and the run metadata.

A run with failed requests (or a truncated result block) is drawn with a red cross and a red
label in every plot, and the plot titles say how many requests failed. Runs of several iterations
of the same point are averaged for the lines; every run is still drawn as a faint dot.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from benchparse import (  # noqa: E402
    failed_sentence,
    gsm8k_markdown,
    known_error_sentences,
    red,
    summarize,
    to_markdown,
)
from matplotlib.ticker import FuncFormatter  # noqa: E402

from pdbench.gsm8k import TEST_SET  # noqa: E402

PLOTS = {
    "throughput": "throughput_vs_concurrency.png",
    "latency": "latency_vs_concurrency.png",
    "tradeoff": "throughput_vs_latency.png",
}
RED = "#d62728"


def load(path: Path) -> tuple[dict, Path]:
    """``bench.json`` from a file, a results directory, a bench directory or a run directory."""
    candidates = (
        [path]
        if path.is_file()
        else [
            path / "bench.json",
            path / "results" / "bench.json",
            path / "bench" / "results" / "bench.json",
        ]
    )
    for c in candidates:
        if c.is_file():
            return json.loads(c.read_text()), c
    raise SystemExit(
        f"report: no bench.json at {path} (looked at "
        f"{', '.join(str(c) for c in candidates)}); run `pdbench parse` first"
    )


def _label(row: dict) -> str:
    preset = row.get("preset")
    isl, osl = row.get("isl"), row.get("osl")
    shape = f"{isl}/{osl}" if isl is not None else "?"
    return f"{preset} ({shape})" if preset else f"ISL/OSL {shape}"


def _num(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _failed(row: dict) -> int:
    if row.get("error"):
        return -1
    return int(row.get("failed_requests") or 0)


def series(rows: list[dict]) -> dict[str, list[dict]]:
    """Per preset, one averaged point per concurrency (``runs`` keeps the raw runs)."""
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        con = r.get("max_concurrency")
        if con is None:
            continue
        grouped[_label(r)][int(con)].append(r)
    out: dict[str, list[dict]] = {}
    for label, by_con in grouped.items():
        points = []
        for con in sorted(by_con):
            runs = by_con[con]
            good = [r for r in runs if not r.get("error")]
            point: dict[str, object] = {
                "concurrency": con,
                "runs": runs,
                "failed": sum(max(_failed(r), 0) for r in runs),
                "truncated": sum(1 for r in runs if r.get("error")),
            }
            for key in (
                "output_throughput",
                "median_ttft_ms",
                "p99_ttft_ms",
                "median_itl_ms",
                "p99_itl_ms",
                "median_e2e_latency_ms",
                "mean_e2e_latency_ms",
            ):
                vals = [v for r in good if (v := _num(r.get(key))) is not None]
                point[key] = sum(vals) / len(vals) if vals else None
            points.append(point)
        out[label] = points
    return out


def _concurrency_axis(ax: plt.Axes, cons: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(cons)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v)}"))
    ax.set_xlabel("max concurrency (bench_serving --max-concurrency)")
    ax.grid(True, which="major", alpha=0.3)


def _title(fig: plt.Figure, text: str, summary: dict) -> None:
    failed = summary.get("failed_requests", 0)
    truncated = summary.get("truncated_blocks", 0)
    if failed or truncated:
        note = f"{failed} FAILED REQUESTS" + (f", {truncated} truncated runs" if truncated else "")
        fig.suptitle(f"{text}\n{note}", color=RED, fontweight="bold")
    else:
        fig.suptitle(f"{text}\n0 failed requests of {summary.get('requests', 0)}", color="black")


def _mark_failures(ax: plt.Axes, x: float, y: float | None, point: dict) -> None:
    if not point["failed"] and not point["truncated"]:
        return
    yy = y if y is not None else ax.get_ylim()[0]
    ax.scatter([x], [yy], marker="X", s=140, color=RED, zorder=5)
    text = f"{point['failed']} failed" if point["failed"] else "truncated"
    # label to the left of points in the right half, so it stays inside the axes
    lo, hi = ax.get_xlim()
    log = ax.get_xscale() == "log"
    frac = (
        (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
        if log and x > 0 < lo
        else (x - lo) / ((hi - lo) or 1)
    )
    left = frac > 0.5
    ax.annotate(
        text,
        (x, yy),
        textcoords="offset points",
        xytext=(-8 if left else 8, 8),
        ha="right" if left else "left",
        color=RED,
        fontweight="bold",
        fontsize=9,
    )


def plot_throughput(data: dict[str, list[dict]], summary: dict, path: Path) -> None:
    """Output token throughput vs concurrency."""
    fig, ax = plt.subplots(figsize=(9, 5.5), constrained_layout=True)
    cons: set[int] = set()
    for label, points in data.items():
        xs = [p["concurrency"] for p in points]
        ys = [p["output_throughput"] for p in points]
        cons.update(xs)
        (line,) = ax.plot(xs, ys, marker="o", label=label)
        for p in points:
            for r in p["runs"]:
                if (v := _num(r.get("output_throughput"))) is not None and len(p["runs"]) > 1:
                    ax.scatter([p["concurrency"]], [v], color=line.get_color(), alpha=0.3, s=12)
    _concurrency_axis(ax, sorted(cons))
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    for points in data.values():
        for p in points:
            _mark_failures(ax, p["concurrency"], p["output_throughput"], p)
    ax.set_ylabel("output token throughput (tok/s)")
    ax.legend(title="preset (ISL/OSL)")
    _title(fig, "Output throughput vs concurrency", summary)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(data: dict[str, list[dict]], summary: dict, path: Path) -> None:
    """TTFT and ITL, p50 and p99, vs concurrency (two panels)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    cons: set[int] = set()
    for ax, metric, name in ((axes[0], "ttft", "TTFT"), (axes[1], "itl", "ITL")):
        for i, (label, points) in enumerate(data.items()):
            color = f"C{i}"
            xs = [p["concurrency"] for p in points]
            cons.update(xs)
            p50 = [p[f"median_{metric}_ms"] for p in points]
            p99 = [p[f"p99_{metric}_ms"] for p in points]
            ax.plot(xs, p50, marker="o", color=color, label=f"{label} p50")
            ax.plot(xs, p99, marker="s", linestyle="--", color=color, label=f"{label} p99")
        _concurrency_axis(ax, sorted(cons))
        for points in data.values():
            for p in points:
                _mark_failures(ax, p["concurrency"], p[f"p99_{metric}_ms"], p)
        ax.set_ylabel(f"{name} (ms)")
        ax.set_title(f"{name}: median (solid) and p99 (dashed)")
        positive = [
            v
            for pts in data.values()
            for p in pts
            for v in (p[f"median_{metric}_ms"], p[f"p99_{metric}_ms"])
            if v and v > 0
        ]
        if positive and max(positive) / min(positive) > 50:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    _title(fig, "Latency vs concurrency", summary)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tradeoff(data: dict[str, list[dict]], summary: dict, path: Path) -> None:
    """Output throughput vs median end-to-end latency, points labelled by concurrency."""
    fig, ax = plt.subplots(figsize=(9, 5.5), constrained_layout=True)
    for label, points in data.items():
        pts = [
            p
            for p in points
            if p["median_e2e_latency_ms"] is not None and p["output_throughput"] is not None
        ]
        xs = [p["median_e2e_latency_ms"] / 1000 for p in pts]
        ys = [p["output_throughput"] for p in pts]
        ax.plot(xs, ys, marker="o", label=label)
        for x, y, p in zip(xs, ys, pts, strict=True):
            ax.annotate(
                f"c={p['concurrency']}",
                (x, y),
                textcoords="offset points",
                xytext=(5, -12),
                fontsize=8,
            )
            _mark_failures(ax, x, y, p)
    ax.set_xlabel("median end-to-end latency per request (s)")
    ax.set_ylabel("output token throughput (tok/s)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.15)
    ax.grid(True, alpha=0.3)
    ax.legend(title="preset (ISL/OSL)")
    _title(fig, "Throughput vs latency", summary)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _meta_lines(meta: dict) -> list[str]:
    labels = [
        ("run_id", "Run"),
        ("router_url", "Router"),
        ("model", "Model"),
        ("client", "Client"),
        ("engine", "Engine"),
        ("started", "Started"),
        ("finished", "Finished"),
        ("presets", "Presets"),
        ("concurrency", "Concurrency"),
        ("iterations", "Iterations"),
        ("dataset", "Dataset"),
        ("note", "Note"),
    ]
    out = []
    for key, name in labels:
        if meta.get(key) not in (None, "", []):
            value = meta[key]
            if isinstance(value, list | dict):
                value = json.dumps(value)
            out.append(f"- **{name}:** {value}")
    return out


def gsm8k_set_lines(info: object) -> list[str]:
    """Which question set GSM8K used (``meta.json``'s ``gsm8k_set``, from the role's check)."""
    if not isinstance(info, dict) or not info:
        return []
    name = str(info.get("set") or "?")
    line = (
        f"Question set: **{name}**: `{info.get('path', '?')}`, {info.get('questions', '?')} "
        f"questions, sha256 `{info.get('sha256', '?')}`"
    )
    if info.get("source") == "fetch" and info.get("url"):
        line += f", fetched from {info['url']}"
    out = [line + "."]
    if name != TEST_SET:
        out.append(
            "The project's sample is for rehearsal only: this is not a GSM8K accuracy number."
        )
    out += [f"- warning: {w}" for w in info.get("warnings") or []]
    return out + [""]


def write(doc: dict, out_dir: Path, meta: dict | None = None, title: str | None = None) -> dict:
    """Draw the plots and write ``report.md``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = meta or doc.get("meta") or {}
    runs = doc.get("runs", [])
    summary = doc.get("summary") or summarize(runs, doc.get("gsm8k"))
    data = series(runs)
    written: dict[str, str] = {}
    if data:
        plot_throughput(data, summary, out_dir / PLOTS["throughput"])
        plot_latency(data, summary, out_dir / PLOTS["latency"])
        plot_tradeoff(data, summary, out_dir / PLOTS["tradeoff"])
        written.update({k: str(out_dir / v) for k, v in PLOTS.items()})
    title = title or f"Benchmark report {meta.get('run_id', '')}".strip()
    md = [f"# {title}", ""]
    md += _meta_lines(meta)
    md += ["", "## Failed requests", "", failed_sentence(summary), ""]
    for r in summary.get("runs_with_failures", []):
        md.append(
            f"- {red(str(r.get('failed_requests') or 'truncated'))} at "
            f"{r.get('preset') or ''} concurrency {r.get('max_concurrency')} "
            f"({r.get('source')}:{r.get('line')})"
        )
    known = known_error_sentences(summary)
    if known:
        md += ["", "Known errors:", ""] + [f"- {line}" for line in known]
    gsm = doc.get("gsm8k") or []
    if gsm:
        md += ["", "## GSM8K accuracy", ""]
        md += gsm8k_set_lines(meta.get("gsm8k_set"))
        if meta.get("engine_is_rehearsal"):
            md += [
                "The rehearsal engine generates deterministic text, not inference: the accuracy "
                "below is what it measures (about 0), reported as measured.",
                "",
            ]
        md += [gsm8k_markdown(gsm)]
    if runs:
        md += ["", "## Serving sweep (sglang.bench_serving)", ""]
        if data:
            md += [
                f"![Output throughput vs concurrency]({PLOTS['throughput']})",
                "",
                f"![TTFT and ITL p50/p99 vs concurrency]({PLOTS['latency']})",
                "",
                f"![Throughput vs latency]({PLOTS['tradeoff']})",
                "",
            ]
        md += [to_markdown(runs)]
        md += [
            "Latency columns: mean / median (p50) / p99 in milliseconds, as bench_serving "
            "printed them (its block rounds to 2 decimals; TPOT and p99 E2E come from its "
            "`--output-file` record when the block does not print them).",
            "",
        ]
    sources = sorted(
        {str(r["source"]) for r in runs if r.get("source")}
        | {str(g["source"]) for g in gsm if g.get("source")}
    )
    if sources:
        md += ["", "## Logs", "", "Relative to the run's `bench/` directory:", ""]
        md += [f"- `{s}`" for s in sources]
    for w in summary.get("warnings", []):
        md.append(f"- warning: {w}")
    report = out_dir / "report.md"
    report.write_text("\n".join(md).rstrip() + "\n")
    written["report"] = str(report)
    return written


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of the ``report`` sub-command."""
    ap.add_argument(
        "path",
        type=Path,
        help="bench.json, or a directory holding it (results/, bench/, or the run directory)",
    )
    ap.add_argument("--out", type=Path, help="output directory (default: next to bench.json)")
    ap.add_argument("--meta", type=Path, help="meta.json (default: bench/meta.json if present)")
    ap.add_argument("--title")


def main(ns: argparse.Namespace) -> int:
    """Write the plots and report.md."""
    doc, where = load(ns.path)
    meta_path = ns.meta or next(
        (p for p in (where.parent / "meta.json", where.parent.parent / "meta.json") if p.is_file()),
        None,
    )
    meta = json.loads(meta_path.read_text()) if meta_path else doc.get("meta")
    written = write(doc, ns.out or where.parent, meta, ns.title)
    print(json.dumps(written))
    return 0
