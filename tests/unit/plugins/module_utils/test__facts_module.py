"""The shared main() and tool lookup of the fact modules (module_utils/_facts_module.py), run
through each module's real main() with AnsibleModule on the recorded host trees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.inferops.disagg.plugins.module_utils import _facts_module
from ansible_collections.inferops.disagg.plugins.modules import (
    amdgpu_facts,
    host_tunables,
    rdma_facts,
)

from ._preflight_helpers import TREES, FakeModule


def run_main(module, args: dict, capsys: pytest.CaptureFixture) -> dict:
    """Run ``module.main()`` with ``args``; return the JSON it exits with."""
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("module", "key", "check", "extra"), [
    (amdgpu_facts, "amdgpu", "gpu.facts", {}),
    (rdma_facts, "rdma", "rdma.facts", {}),
    (host_tunables, "host_tunables", "host.facts", {"check_docker": False}),
])
def test_main_reports_facts_and_a_bad_root(module, key, check, extra, capsys):
    out = run_main(module, {"root": str(TREES / "fit"), **extra}, capsys)
    assert out["changed"] is False and "failed" not in out
    assert set(out["ansible_facts"]) == {key}
    bad = run_main(module, {"root": str(TREES / "absent"), **extra}, capsys)
    assert bad["failed"] is True
    assert bad["msg"] == (f"root {TREES / 'absent'}: not a directory (check {check}); "
                          "fix: point root at / or at a recorded host tree")


def test_main_turns_a_probe_error_into_a_failure(capsys):
    out = run_main(amdgpu_facts, {"root": str(TREES / "malformed")}, capsys)
    assert out["failed"] is True and out["check"] == "gpu.facts"
    assert out["msg"].startswith("amd-smi static --json: malformed JSON")
    assert out["source"].startswith("amd-smi static --json") and out["fix"]


def test_main_runs_in_check_mode(capsys):
    out = run_main(rdma_facts, {"root": str(TREES / "fit"), "_ansible_check_mode": True}, capsys)
    assert out["changed"] is False and out["ansible_facts"]["rdma"]["source"] == "sysfs"


def test_find_tool_under_a_root_searches_only_the_root(tmp_path: Path):
    module = FakeModule()
    root = str(TREES / "fit")
    assert _facts_module.find_tool(module, "amd-smi", None, root, ("/opt/rocm/bin",)) == \
        os.path.join(root, "opt/rocm/bin/amd-smi")
    assert _facts_module.find_tool(module, "amd-smi", None, root) is None  # not in usr/bin
    assert _facts_module.find_tool(module, "rocm-smi", None, root) == \
        os.path.join(root, "usr/bin/rocm-smi")
    assert _facts_module.find_tool(module, "sh", None, root) is None  # never the host's


def test_find_tool_explicit_path_must_be_executable(tmp_path: Path):
    tool = tmp_path / "ibv_devinfo"
    tool.write_text("#!/bin/sh\n")
    assert _facts_module.find_tool(FakeModule(), "x", str(tool), "/") is None
    tool.chmod(0o755)
    assert _facts_module.find_tool(FakeModule(), "x", str(tool), "/") == str(tool)


def test_find_tool_on_the_host_uses_path(tmp_path: Path):
    assert _facts_module.find_tool(FakeModule(), "sh", None, "/") is not None
    assert _facts_module.find_tool(FakeModule(), "no-such-tool-xyz", None, "/") is None
