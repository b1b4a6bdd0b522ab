"""``python -m pdbench``: parse, report, compare, gsm8k, point, dataset.

* ``parse FILE|DIR ... [--out DIR]``: bench_serving logs (``*.log``), ``--output-file`` records
  (``*.jsonl``) and GSM8K logs -> ``bench.csv``, ``bench.json``, ``bench.md`` (or the Markdown on
  stdout). Directories are searched recursively. Exit 1 on a truncated block (unless
  ``--allow-truncated``), 2 when nothing was found.
* ``report PATH``: PNG plots and ``report.md`` from ``bench.json``.
* ``compare RUN_A RUN_B``: per-metric deltas.
* ``gsm8k --base-url URL --data-path FILE``: few-shot GSM8K accuracy through ``/generate``.
* ``point --log L --jsonl J --marker M -- <bench_serving args>``: one sweep point.
* ``dataset --out FILE --conversations N``: the offline prompt source for ``--dataset-name
  random``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchparse import collect, document_markdown, json_safe, to_csv

from pdbench import compare, dataset, gsm8k, point, report

_SUFFIXES = (".log", ".jsonl", ".txt", ".out", ".md")


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix in _SUFFIXES and f.name not in ("bench.md", "report.md")
            )
        elif p.is_file():
            found.append(p)
        else:
            raise SystemExit(f"parse: {p} does not exist")
    return found


def parse_paths(paths: list[Path], strict: bool = True, base: Path | None = None) -> dict:
    """Parse files/directories into the ``bench.json`` document."""
    files = []
    for f in _files(paths):
        name = str(f.relative_to(base)) if base and f.is_relative_to(base) else str(f)
        files.append((name, f.read_text(errors="replace")))
    return collect(files, strict=strict)


def write_outputs(doc: dict, out: Path, title: str = "Benchmark results") -> dict[str, str]:
    """``bench.csv``, ``bench.json``, ``bench.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "bench.csv", "json": out / "bench.json", "md": out / "bench.md"}
    paths["csv"].write_text(to_csv(doc["runs"]))
    paths["json"].write_text(json.dumps(json_safe(doc), indent=1, sort_keys=True) + "\n")
    paths["md"].write_text(document_markdown(doc, title))
    return {k: str(v) for k, v in paths.items()}


def _cmd_parse(ns: argparse.Namespace) -> int:
    try:
        doc = parse_paths(ns.paths, strict=not ns.allow_truncated, base=ns.base)
    except ValueError as exc:
        print(f"parse: {exc}", file=sys.stderr)
        return 1
    if not doc["runs"] and not doc["gsm8k"]:
        print(
            "parse: no 'Serving Benchmark Result' block, result record or GSM8K result found",
            file=sys.stderr,
        )
        return 2
    if ns.out:
        written = write_outputs(doc, ns.out, ns.title)
        print(json.dumps({"written": written, "summary": json_safe(doc["summary"])}))
    else:
        print(document_markdown(doc, ns.title), end="")
    for w in doc["summary"].get("warnings", []):
        print(f"parse: warning: {w}", file=sys.stderr)
    return 0


def _cmd_dataset(ns: argparse.Namespace) -> int:
    changed = dataset.write(ns.out, ns.conversations, ns.seed)
    print(json.dumps({"path": str(ns.out), "conversations": ns.conversations, "changed": changed}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command each)."""
    ap = argparse.ArgumentParser(
        prog="pdbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parse", help="logs/records -> bench.csv, bench.json, bench.md")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--out", type=Path, help="directory for bench.{csv,json,md}")
    p.add_argument("--base", type=Path, help="record file names relative to this directory")
    p.add_argument(
        "--allow-truncated",
        action="store_true",
        help="keep going past truncated blocks (they become error rows)",
    )
    p.add_argument("--title", default="Benchmark results")
    p.set_defaults(func=_cmd_parse)
    r = sub.add_parser("report", help="PNG plots and report.md from bench.json")
    report.add_arguments(r)
    r.set_defaults(func=report.main)
    c = sub.add_parser("compare", help="per-metric deltas between two runs")
    compare.add_arguments(c)
    c.set_defaults(func=compare.main)
    g = sub.add_parser("gsm8k", help="few-shot GSM8K accuracy via /generate")
    gsm8k.add_arguments(g)
    g.set_defaults(func=gsm8k.main)
    pt = sub.add_parser("point", help="one bench_serving run with marker and log")
    point.add_arguments(pt)
    pt.set_defaults(func=point.main)
    d = sub.add_parser("dataset", help="offline ShareGPT-format prompts for --dataset-name random")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--conversations", type=int, default=4096)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_dataset)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point. A file that cannot be read or written, or a value a sub-command refuses,
    is one line on stderr and exit 1, never a traceback."""
    ns = build_parser().parse_args(argv)
    try:
        return int(ns.func(ns) or 0)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"pdbench {ns.cmd}: error: cannot use{where}: {exc.strerror or exc}",
              file=sys.stderr)
    except ValueError as exc:
        print(f"pdbench {ns.cmd}: error: {exc}", file=sys.stderr)
    return 1
