"""Shared helpers for the preflight unit tests: fixture paths and a stand-in AnsibleModule."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / ".cache" / "collections"))
FIXTURES = REPO / "tests" / "fixtures" / "preflight"
RECORDED = FIXTURES / "recorded"
DERIVED = FIXTURES / "derived"
TREES = FIXTURES / "trees"


def text(path: Path) -> str:
    return path.read_text()


class FakeModule:
    """Just what the fact modules' gather() uses: params, get_bin_path, run_command."""

    def __init__(self, **params: object) -> None:
        self.params = params
        self.calls: list[list[str]] = []

    def get_bin_path(self, name: str, opt_dirs: list[str] | None = None) -> str | None:
        return shutil.which(name)

    def run_command(self, argv: list[str], environ_update: dict | None = None):
        self.calls.append(list(argv))
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr
