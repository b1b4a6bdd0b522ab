"""``pdbench compare RUN_A RUN_B``: per-metric deltas between two benchmark runs.

Points are matched on (preset or ISL/OSL, concurrency); several iterations of a point are
averaged first. For each matched point and metric the table gives A, B, B - A and the change in
percent, and says whether B is better or worse (throughput: higher is better; latencies and
failed requests: lower is better) when the change is larger than ``--threshold`` percent.
Failed requests are always shown and in red when there are any. GSM8K accuracy is compared too.
Points that exist in only one run are listed.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

from benchparse import failed_sentence, red

from pdbench.report import load

# (key, label, higher is better)
METRICS = [
    ("output_throughput", "Output tok/s", True),
    ("total_throughput", "Total tok/s", True),
    ("request_throughput", "Req/s", True),
    ("mean_ttft_ms", "TTFT mean (ms)", False),
    ("median_ttft_ms", "TTFT p50 (ms)", False),
    ("p99_ttft_ms", "TTFT p99 (ms)", False),
    ("mean_itl_ms", "ITL mean (ms)", False),
    ("median_itl_ms", "ITL p50 (ms)", False),
    ("p99_itl_ms", "ITL p99 (ms)", False),
    ("mean_tpot_ms", "TPOT mean (ms)", False),
    ("median_tpot_ms", "TPOT p50 (ms)", False),
    ("p99_tpot_ms", "TPOT p99 (ms)", False),
    ("mean_e2e_latency_ms", "E2E mean (ms)", False),
    ("median_e2e_latency_ms", "E2E p50 (ms)", False),
    ("p99_e2e_latency_ms", "E2E p99 (ms)", False),
    ("successful_requests", "Successful requests", True),
    ("failed_requests", "Failed requests", False),
]


def _key(row: dict) -> tuple[str, int]:
    preset = row.get("preset") or f"{row.get('isl')}/{row.get('osl')}"
    return str(preset), int(row.get("max_concurrency") or 0)


def _average(rows: list[dict]) -> dict[tuple[str, int], dict]:
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in rows:
        grouped[_key(r)].append(r)
    out = {}
    for key, runs in grouped.items():
        point: dict[str, object] = {
            "runs": len(runs),
            "truncated": sum(1 for r in runs if r.get("error")),
        }
        for metric, _label, _better in METRICS:
            vals = [
                float(v)
                for r in runs
                if isinstance(v := r.get(metric), int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
            ]
            if metric in ("failed_requests", "successful_requests"):
                point[metric] = sum(vals) if vals else None
            else:
                point[metric] = sum(vals) / len(vals) if vals else None
        out[key] = point
    return out


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.2f}"
    return str(v)


def _verdict(a: float, b: float, higher_better: bool, threshold: float) -> str:
    if a == b:
        return "="
    if a == 0:
        pct = math.inf
    else:
        pct = (b - a) / abs(a) * 100
    if abs(pct) < threshold:
        return "~"
    better = (b > a) == higher_better
    return "better" if better else "worse"


def compare(
    doc_a: dict, doc_b: dict, name_a: str = "A", name_b: str = "B", threshold: float = 2.0
) -> tuple[str, dict]:
    """The Markdown comparison and a machine-readable version of it."""
    a, b = _average(doc_a.get("runs", [])), _average(doc_b.get("runs", []))
    both = sorted(set(a) & set(b), key=lambda k: (k[0], k[1]))
    md = [
        f"# Compare {name_a} -> {name_b}",
        "",
        f"- **A:** {name_a}: {failed_sentence(doc_a.get('summary') or {})}",
        f"- **B:** {name_b}: {failed_sentence(doc_b.get('summary') or {})}",
        f"- better/worse: change beyond {threshold:g}% in the good/bad direction "
        "(throughput up, latency and failures down)",
        "",
    ]
    points: list[dict] = []
    data: dict[str, object] = {"a": name_a, "b": name_b, "points": points}
    for key in both:
        pa, pb = a[key], b[key]
        md += [
            f"## {key[0]} @ concurrency {key[1]}",
            "",
            "| Metric | A | B | B - A | Change | |",
            "|---|---|---|---|---|---|",
        ]
        rows = []
        for metric, label, higher in METRICS:
            va, vb = pa.get(metric), pb.get(metric)
            if va is None and vb is None:
                continue
            delta = pct = None
            verdict = ""
            if va is not None and vb is not None:
                delta = vb - va
                pct = (delta / abs(va) * 100) if va else (0.0 if vb == va else math.inf)
                verdict = _verdict(va, vb, higher, threshold)
            cells = [
                label,
                _fmt(va),
                _fmt(vb),
                _fmt(delta),
                "-" if pct is None else ("new" if math.isinf(pct) else f"{pct:+.1f}%"),
                verdict,
            ]
            if metric == "failed_requests":
                cells[1] = red(_fmt(va)) if va else _fmt(va)
                cells[2] = red(_fmt(vb)) if vb else _fmt(vb)
            md.append("| " + " | ".join(cells) + " |")
            rows.append(
                {
                    "metric": metric,
                    "a": va,
                    "b": vb,
                    "delta": delta,
                    "percent": None if pct is None or math.isinf(pct) else pct,
                    "verdict": verdict,
                }
            )
        if pa["truncated"] or pb["truncated"]:
            text = f"truncated result blocks: A {pa['truncated']}, B {pb['truncated']}"
            md.append("\n" + red(text))
        md.append("")
        points.append({"preset": key[0], "concurrency": key[1], "metrics": rows})
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a or only_b:
        md += ["## Unmatched points", ""]
        md += [f"- only in A: {k[0]} @ {k[1]}" for k in only_a]
        md += [f"- only in B: {k[0]} @ {k[1]}" for k in only_b]
        md.append("")
    ga, gb = doc_a.get("gsm8k") or [], doc_b.get("gsm8k") or []
    if ga and gb:
        acc_a = sum(g["accuracy"] for g in ga) / len(ga)
        acc_b = sum(g["accuracy"] for g in gb) / len(gb)
        md += [
            "## GSM8K",
            "",
            "| Metric | A | B | B - A |",
            "|---|---|---|---|",
            f"| Accuracy | {acc_a:.3f} | {acc_b:.3f} | {acc_b - acc_a:+.3f} |",
            "",
        ]
        data["gsm8k"] = {"a": acc_a, "b": acc_b}
    data["only_a"] = [list(k) for k in only_a]
    data["only_b"] = [list(k) for k in only_b]
    return "\n".join(md).rstrip() + "\n", data


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of the ``compare`` sub-command."""
    ap.add_argument("run_a", type=Path, help="run directory, bench directory or bench.json")
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--out", type=Path, help="also write the Markdown here")
    ap.add_argument(
        "--threshold",
        type=float,
        default=2.0,
        help="percent change below which a difference is called noise (~)",
    )


def main(ns: argparse.Namespace) -> int:
    """Print the comparison."""
    doc_a = load(ns.run_a)[0]
    doc_b = load(ns.run_b)[0]
    md, _data = compare(doc_a, doc_b, str(ns.run_a), str(ns.run_b), ns.threshold)
    print(md, end="")
    if ns.out:
        ns.out.parent.mkdir(parents=True, exist_ok=True)
        ns.out.write_text(md)
    return 0
