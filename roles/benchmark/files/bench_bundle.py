"""What the client container needs, as one gzipped tar, base64 in a JSON line (controller side).

``python bench_bundle.py --client bench_client.py --tokenizer DIR [--file PATH ...]`` prints
``{"b64": ..., "members": [...], "bytes": N}``. Members:

* ``opt/inferops-disagg-bench/``: ``bench_client.py``, and the ``pdbench`` and ``benchparse``
  packages this Python imports (the code the controller path runs);
* the tokenizer's files (``--tokenizer``: configs, tokenizer files, no weights) and every
  ``--file`` (the prompt file, the GSM8K set), at their own absolute paths, so that the client
  in the container takes exactly the arguments the controller path gives.

The role extracts it at ``/`` in the client container.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import tarfile
from pathlib import Path

import benchparse

import pdbench

CODE_DIR = "opt/inferops-disagg-bench"
# Tokenizer and model config files; weights (.safetensors, .bin, .pt, .gguf) are left out.
TOKENIZER_SUFFIXES = (".json", ".model", ".txt", ".tiktoken", ".py", ".jinja")


def _package(tar: tarfile.TarFile, pkg: Path, members: list[str]) -> None:
    for f in sorted(pkg.rglob("*.py")):
        name = f"{CODE_DIR}/{pkg.name}/{f.relative_to(pkg)}"
        tar.add(f, arcname=name)
        members.append(name)


def main() -> int:
    """Write the bundle's JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--client", required=True, type=Path)
    ap.add_argument("--tokenizer", type=Path)
    ap.add_argument("--file", action="append", default=[], type=Path)
    ns = ap.parse_args()
    members: list[str] = []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", dereference=True) as tar:
        tar.add(ns.client, arcname=f"{CODE_DIR}/bench_client.py")
        members.append(f"{CODE_DIR}/bench_client.py")
        for mod in (pdbench, benchparse):
            _package(tar, Path(mod.__file__).resolve().parent, members)
        files = list(ns.file)
        if ns.tokenizer:
            files += sorted(
                f for f in ns.tokenizer.iterdir() if f.is_file() and f.suffix in TOKENIZER_SUFFIXES
            )
        for f in files:
            name = str(f.absolute()).lstrip("/")
            if name not in members:
                tar.add(f, arcname=name)
                members.append(name)
    data = buf.getvalue()
    print(json.dumps({"b64": base64.b64encode(data).decode(), "members": members,
                      "bytes": len(data)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
