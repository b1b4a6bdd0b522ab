"""pdbench CLI: parse exit codes and outputs, dataset, the bench_serving wrapper."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from pdbench import bench_serving, cli, dataset

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "bench"


def test_parse_writes_csv_json_md(tmp_path, capsys):
    assert cli.main(["parse", str(FIX / "rehearsal-0.5.2"), "--base", str(FIX), "--out",
                     str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["runs"] == 4 and out["summary"]["failed_requests"] == 3
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert doc["runs"][0]["request_rate"] == "inf"  # strict JSON
    assert (tmp_path / "bench.csv").read_text().startswith("Model,xP_yD,ISL,OSL,Concurrency,")
    assert "3 FAILED" in (tmp_path / "bench.md").read_text()


def test_parse_to_stdout_and_exit_codes(tmp_path, capsys):
    assert cli.main(["parse", str(FIX / "sglang-0.4.x_bbuf-shared-experts.md")]) == 0
    printed = capsys.readouterr().out
    assert "## bench_serving runs" in printed and "| 190.52 |" in printed
    truncated = FIX / "sglang-0.4.0.post2_issue2805-truncated.log"
    assert cli.main(["parse", str(truncated)]) == 1
    assert "truncated 'Serving Benchmark Result' block" in capsys.readouterr().err
    assert cli.main(["parse", str(truncated), "--allow-truncated"]) == 0
    assert "truncated" in capsys.readouterr().out
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert cli.main(["parse", str(empty)]) == 2


def test_dataset_is_deterministic_and_idempotent(tmp_path):
    path = tmp_path / "d.json"
    assert dataset.write(path, 50, seed=3) is True
    first = path.read_bytes()
    assert dataset.write(path, 50, seed=3) is False
    data = json.loads(first)
    assert len(data) == 50
    turns = data[0]["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt"] and len(turns[0]["value"].split()) >= 24
    assert dataset.write(path, 51, seed=3) is True


class _Resp:
    def __init__(self, body, status=200):
        self._body, self.status_code = body, status

    def json(self):
        return self._body


def test_wrapper_hides_only_a_router_summary(monkeypatch, capsys):
    answers = {
        "http://r/get_server_info": _Resp({"router_manager": True, "workers_count": 2}),
        "http://w/get_server_info": _Resp({"internal_states": [{"x": 1}]}),
        "http://pd/get_server_info": _Resp({"decode": [{"internal_states": [{}]}]}),
        "http://r/v1/models": _Resp({"data": []}),
    }
    monkeypatch.setattr(bench_serving, "_real_get", lambda url, *a, **k: answers[url])
    assert bench_serving._patched_get("http://r/get_server_info").status_code == 501
    assert "sgl-project/sglang#6497" in capsys.readouterr().err
    assert bench_serving._patched_get("http://w/get_server_info").status_code == 200
    assert bench_serving._patched_get("http://pd/get_server_info").status_code == 200
    assert bench_serving._patched_get("http://r/v1/models").status_code == 200
    assert requests.get is not bench_serving._patched_get  # only patched inside main()
