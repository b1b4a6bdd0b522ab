"""The benchmark role's GSM8K set choice on a real engine: it stops, with how to provide the set.

Runs ``playbooks/benchmark.yml`` with a non-rehearsal launcher against nothing: the role stops in
its preflight, before it ever contacts the router (whose URL is a closed loopback port).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_loopback_inventory

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "gsm8k-sample" / "test.jsonl"


def _play(tmp: Path, **settings: object) -> subprocess.CompletedProcess:
    base = {
        "disagg_model_profile": "rehearsal-tiny",
        "disagg_launcher": ["python3", "-m", "sglang.launch_server"],
        "disagg_runs_dir": str(tmp / "runs"), "disagg_work_dir": str(tmp / "work"),
        "benchmark_router_url": "http://127.0.0.1:9", "benchmark_router_ready_timeout": 2,
        "benchmark_serving": False,
    }
    inv = write_loopback_inventory(tmp, {**base, **settings})
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/benchmark.yml",
         "-i", str(inv), "-e", "disagg_run_id=gsm8k-set"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("settings", "expected"), [
    ({"benchmark_gsm8k_sha256": ""}, ["refusing to download",
                                      "benchmark_gsm8k_data=/path/to/test.jsonl",
                                      "benchmark_gsm8k_sha256=<64 hex digits>"]),
    ({"benchmark_gsm8k_url": ""}, ["no benchmark_gsm8k_data or benchmark_gsm8k_url is set",
                                   "benchmark_gsm8k_data=/path/to/test.jsonl"]),
    ({"benchmark_gsm8k_data": str(SAMPLE)}, ["sample, for rehearsal only"]),
    ({"benchmark_gsm8k_url": "http://127.0.0.1:9/test.jsonl", "benchmark_gsm8k_sha256": "a" * 64},
     ["could not fetch http://127.0.0.1:9/test.jsonl", "benchmark_gsm8k_data=/path/to/test.jsonl"]),
])
def test_real_engine_without_the_test_set_stops(tmp_path, settings, expected):
    proc = _play(tmp_path, **settings)
    out = _flat(proc.stdout + proc.stderr)
    assert proc.returncode != 0, out[-3000:]
    for text in expected:
        assert text in out, out[-3000:]
    assert "Wait for the router" not in out


def test_the_default_fetch_is_pinned_to_a_commit_and_a_checksum():
    """The default URL names a commit (not a branch) and the default checksum is that file's."""
    import yaml  # pylint: disable=import-outside-toplevel

    defaults = yaml.safe_load((REPO / "roles" / "benchmark" / "defaults" / "main.yml").read_text())
    url, sha = defaults["benchmark_gsm8k_url"].strip(), defaults["benchmark_gsm8k_sha256"]
    assert url.startswith("https://raw.githubusercontent.com/openai/grade-school-math/3101c7d"), url
    assert url.endswith("/grade_school_math/data/test.jsonl")
    assert sha == "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"
