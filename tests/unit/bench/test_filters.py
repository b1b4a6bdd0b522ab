"""The inferops.disagg bench filters (plan expansion, parsing a string)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / ".cache" / "collections"))

from ansible_collections.inferops.disagg.plugins.filter import bench  # noqa: E402

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "bench"


def test_filters_are_registered():
    names = {"bench_points", "bench_results", "bench_gsm8k"}
    assert set(bench.FilterModule().filters()) == names


def test_bench_points_and_its_errors():
    points = bench.bench_points([8, 1024], [{"name": "p", "isl": 64, "osl": 32}])
    assert [(p["id"], p["num_prompts"]) for p in points] == [("p/iter1_con8", 16),
                                                             ("p/iter1_con1024", 2048)]
    with pytest.raises(AnsibleFilterError, match="bench_points: concurrency 0"):
        bench.bench_points([0], [{"name": "p", "isl": 64, "osl": 32}])


def test_bench_results_and_gsm8k_on_strings():
    rows = bench.bench_results((FIX / "rehearsal-0.5.2" / "con8.log").read_text())
    assert rows[0]["request_rate"] == "inf" and rows[0]["successful_requests"] == 16
    with pytest.raises(AnsibleFilterError, match="truncated"):
        bench.bench_results((FIX / "sglang-0.4.0.post2_issue2805-truncated.log").read_text())
    assert bench.bench_gsm8k("Accuracy: 0.5\nInvalid: 0.1\n")[0]["invalid"] == 0.1


def test_every_filter_has_its_doc_file_and_ansible_doc_renders_it():
    filter_dir = Path(bench.__file__).resolve().parent
    names = sorted(bench.FilterModule().filters())
    for name in names:
        text = (filter_dir / f"{name}.yml").read_text()
        assert text.startswith("---\n"), name
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    proc = subprocess.run([str(ansible_doc), "-t", "filter", "--json",
                           *(f"inferops.disagg.{n}" for n in names)],
                          capture_output=True, text=True, timeout=300, check=True)
    docs = json.loads(proc.stdout)
    for name in names:
        entry = docs[f"inferops.disagg.{name}"]
        assert entry["doc"]["name"] == name
        assert entry["doc"]["filename"].endswith(f"/plugins/filter/{name}.yml")
        assert "_input" in entry["doc"]["options"] and entry["examples"] and entry["return"]
