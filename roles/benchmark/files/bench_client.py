"""The benchmark clients inside the deployed image, on the client host (benchmark_client_host).

The role copies this file with pdbench and benchparse (the controller's own copies, the code
the controller path runs) into a client container of the deployed image, under
``/opt/inferops-disagg-bench`` (on ``PYTHONPATH``), and runs, with the same arguments as the
controller path's ``python -m pdbench``:

* ``bench_client.py point --log L --jsonl J --marker M -- <bench_serving args>``: one sweep point
  (``pdbench point``: SGLang's ``python -m sglang.bench_serving`` of the image);
* ``bench_client.py gsm8k ...``: GSM8K through the router (``pdbench gsm8k``);
* ``bench_client.py files PATH ...``: every file under the paths as one JSON object
  ``{path: text}`` on stdout, for the controller to write into the same place of its run
  directory (the Docker API carries the files: no directory shared with the host is needed);
* ``bench_client.py check``: the image can run the clients (sglang.bench_serving, requests);
* ``bench_client.py write --base DIR`` (on the controller): that JSON object on stdin, written
  (files under DIR only, directories made, unchanged files left alone); prints
  ``{"written": [...]}``.

Only these sub-commands: ``python -m pdbench`` would import the report code and matplotlib,
which the image does not need to have.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path


def _files(paths: list[str]) -> int:
    out: dict[str, str] = {}
    for p in map(Path, paths):
        found = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in found:
            if f.is_file():
                out[str(f)] = f.read_text(errors="replace")
    print(json.dumps(out))
    return 0


def _write(base: str) -> int:
    root = Path(base).resolve()
    written = []
    for name, text in sorted(json.load(sys.stdin).items()):
        path = Path(name).resolve()
        if not path.is_relative_to(root):
            raise SystemExit(f"write: {name} is not under {root}")
        if path.is_file() and path.read_text(errors="replace") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(str(path.relative_to(root)))
    print(json.dumps({"written": written}))
    return 0


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing (no sglang at all)
        return False


def _check() -> int:
    missing = [m for m in ("sglang.bench_serving", "requests") if not _found(m)]
    print(json.dumps({"python": sys.version.split()[0], "missing": missing}))
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; its exit code."""
    args = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="bench_client.py", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    sub.add_parser("files").add_argument("paths", nargs="+")
    sub.add_parser("write").add_argument("--base", required=True)
    if args[:1] in (["point"], ["gsm8k"]):
        from pdbench import gsm8k, point  # the image's Python needs them only for these two

        mod = point if args[0] == "point" else gsm8k
        mod.add_arguments(sub.add_parser(args[0]))
        return int(mod.main(ap.parse_args(args)) or 0)
    sub.add_parser("point", help="one sweep point (pdbench point)")
    sub.add_parser("gsm8k", help="GSM8K through the router (pdbench gsm8k)")
    ns = ap.parse_args(args)
    if ns.cmd == "write":
        return _write(ns.base)
    return _check() if ns.cmd == "check" else _files(ns.paths)


if __name__ == "__main__":
    sys.exit(main())
