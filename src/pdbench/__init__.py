"""pdbench: benchmark tooling for inferops.disagg (parse, report, compare, GSM8K, sweep points).

The parsing logic lives in the collection's ``plugins/module_utils/_bench_parse.py`` so that the
Ansible module and this CLI share one implementation; :func:`bench_parse` loads it from the
installed collection, or from this checkout when the collection path is not set up.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["bench_parse", "REPO"]

REPO = Path(__file__).resolve().parents[2]
_COLLECTION_MODULE = "ansible_collections.inferops.disagg.plugins.module_utils._bench_parse"


def bench_parse() -> ModuleType:
    """The collection's ``_bench_parse`` module_utils."""
    if "pdbench._bench_parse" in sys.modules:
        return sys.modules["pdbench._bench_parse"]
    try:
        module = importlib.import_module(_COLLECTION_MODULE)
    except ImportError:
        path = REPO / "plugins" / "module_utils" / "_bench_parse.py"
        if not path.is_file():
            raise ImportError(
                f"cannot find {_COLLECTION_MODULE}: install the inferops.disagg collection or "
                f"run from a checkout (looked for {path})"
            ) from None
        spec = importlib.util.spec_from_file_location("pdbench._bench_parse", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    sys.modules["pdbench._bench_parse"] = module
    return module
