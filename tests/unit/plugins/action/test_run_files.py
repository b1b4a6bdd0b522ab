"""The run_files action plugin's file writing (collect_logs writes the run record with it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible.errors import AnsibleActionFail
from ansible_collections.inferops.disagg.plugins.action.run_files import _check_name, write_file


def test_write_file_writes_once_and_leaves_the_same_content(tmp_path: Path) -> None:
    path = tmp_path / "pd-decode.log"
    assert write_file(str(path), "line 1\n", 0o644) is True
    assert path.read_text() == "line 1\n" and (path.stat().st_mode & 0o777) == 0o644
    before = path.stat().st_mtime_ns
    assert write_file(str(path), "line 1\n", 0o644) is False  # unchanged: not rewritten
    assert path.stat().st_mtime_ns == before
    assert write_file(str(path), "line 1\nline 2\n", 0o600) is True
    assert path.read_text() == "line 1\nline 2\n" and (path.stat().st_mode & 0o777) == 0o600
    assert [p for p in os.listdir(tmp_path) if p.startswith(".run_files-")] == []


@pytest.mark.parametrize("name", ["", ".", "..", "../escape.log", "sub/dir.log", "a\\b"])
def test_names_with_a_directory_part_are_refused(name: str) -> None:
    with pytest.raises(AnsibleActionFail, match="is not a plain file name; fix:"):
        _check_name(name)


def test_plain_names_pass() -> None:
    assert _check_name("pds-prefill-prefill-1.inspect.json") == "pds-prefill-prefill-1.inspect.json"
