"""Golden files: compare rendered text with tests/golden/<...>; regenerate only on request.

``INFEROPS_UPDATE_GOLDEN=1 pytest <tests>`` rewrites the golden files from what the code renders
now (review the diff before committing). Without it a missing or different golden file fails the
test with a unified diff; nothing is ever rewritten silently.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent
UPDATE_ENV = "INFEROPS_UPDATE_GOLDEN"


def updating() -> bool:
    """Whether this run was asked to rewrite golden files."""
    return os.environ.get(UPDATE_ENV) == "1"


def check_golden(rel: str, actual: str) -> None:
    """Fail unless ``tests/golden/<rel>`` holds exactly ``actual`` (or rewrite it on request)."""
    path = GOLDEN / rel
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != actual:
            path.write_text(actual)
        return
    hint = f"regenerate with {UPDATE_ENV}=1 pytest ... and review the diff"
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; {hint}")
    expected = path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"golden/{rel}",
                "rendered",
            )
        )
        pytest.fail(f"rendered text differs from golden/{rel} ({hint}):\n{diff}")
