"""The bench_parse module run by Ansible itself (AnsiballZ packs the benchparse package and its
relative imports), and pdbench's ``benchparse`` being the collection's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import benchparse

REPO = Path(__file__).resolve().parents[3]
FIX = REPO / "tests" / "fixtures" / "bench"
PACKAGE = REPO / "plugins" / "module_utils" / "benchparse"
ANSIBLE = Path(sys.executable).parent / "ansible"


def run_module(args: str) -> dict:
    """``ansible localhost -m inferops.disagg.bench_parse -a ARGS``: the host's result."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run([str(ANSIBLE), "localhost", "-m", "inferops.disagg.bench_parse",
                           "-a", args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    out = json.loads(proc.stdout)
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_module_parses_a_recorded_run_and_writes_the_tables_once(tmp_path):
    args = f"src={FIX / 'rehearsal-0.5.2'} base={FIX} dest={tmp_path}"
    first = run_module(args)
    assert first["changed"] is True and not first.get("failed")
    assert first["summary"]["runs"] == 4 and first["summary"]["failed_requests"] == 3
    assert [r["max_concurrency"] for r in first["runs"]] == [2, 8, 32, 4]
    assert first["runs"][0]["request_rate"] == "inf"
    assert first["gsm8k"][0]["num_questions"] == 32
    assert "3 FAILED" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.csv").read_text().startswith("Model,xP_yD,ISL,OSL,Concurrency,")
    assert run_module(args)["changed"] is False


def test_module_fails_on_a_truncated_block_with_file_and_line():
    log = FIX / "sglang-0.4.0.post2_issue2805-truncated.log"
    result = run_module(f"src={log}")
    assert result["failed"] is True
    assert result["msg"].startswith(f"truncated 'Serving Benchmark Result' block at {log}:6: "
                                    "it stops after 'Median TTFT (ms):' (line 24)")


def test_pdbench_imports_the_collection_files():
    installed = Path(benchparse.__file__).resolve().parent
    names = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert names == sorted(p.name for p in installed.glob("*.py"))
    assert {"__init__.py", "results.py", "gsm8k.py", "tables.py"} <= set(names)
    for name in names:
        assert (installed / name).read_bytes() == (PACKAGE / name).read_bytes(), name


def test_module_names_and_counts_the_transfer_encoding_errors_at_512(tmp_path):
    src = FIX / "transfer-encoding-0.5.2"
    result = run_module(f"src={src} base={FIX} dest={tmp_path}")
    assert not result.get("failed")
    (run,) = result["runs"]  # the crashed warm-up log has no result block
    assert (run["max_concurrency"], run["failed_requests"]) == (512, 25)
    assert run["known_errors"] == {"transfer_encoding_400": {"requests": 25, "lines": 0}}
    (entry,) = result["summary"]["known_errors"]
    assert (entry["key"], entry["max_concurrency"], entry["requests"]) == (
        "transfer_encoding_400", 512, 25)
    assert "`router_retry_*`" in entry["hint"] and "`router_cb_*`" in entry["hint"]
    md = (tmp_path / "bench.md").read_text()
    assert ("25 requests failed with TransferEncodingError (400, not enough data for the "
            "transfer length header) at concurrency 512**</span>: see router settings "
            "`router_request_timeout_secs`") in md
    assert ",25,transfer_encoding_400=25," in (tmp_path / "bench.csv").read_text()
