"""Where the benchmark clients ran (benchmark_client_host): the report field, and the two files
the role runs for a client host (bench_bundle.py on the controller, bench_client.py in the image).
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import benchparse
import pytest

from pdbench import cli, report

REPO = Path(__file__).resolve().parents[3]
FILES = REPO / "roles" / "benchmark" / "files"
FIX = REPO / "tests" / "fixtures" / "bench"
HOST = "proxy-1 (in image inferops-rehearsal:abc)"


def test_client_sentence_names_the_client_or_nothing():
    assert benchparse.client_sentence({"client": "controller"}) == "Clients ran on: **controller**"
    assert benchparse.client_sentence({"client": HOST}) == f"Clients ran on: **{HOST}**"
    # documents written before the field, or without metadata: no sentence
    for meta in ({}, {"client": ""}, None, "x"):
        assert benchparse.client_sentence(meta) == ""


def test_bench_md_names_the_client_when_the_metadata_does():
    doc = cli.parse_paths([FIX / "rehearsal-0.5.2"], base=FIX)
    plain = benchparse.document_markdown(doc, "T")
    assert "Clients ran on" not in plain  # unchanged without meta (public API compatible)
    doc["meta"] = {"run_id": "r1", "client": HOST}
    md = benchparse.document_markdown(doc, "T")
    assert md.startswith(f"# T\n\nClients ran on: **{HOST}**\n\n")
    assert md.replace(f"Clients ran on: **{HOST}**\n\n", "") == plain


def test_report_md_names_the_client(tmp_path):
    doc = cli.parse_paths([FIX / "rehearsal-0.5.2"], base=FIX)
    cli.write_outputs(doc, tmp_path)
    report.write(report.load(tmp_path)[0], tmp_path, {"run_id": "r1", "client": HOST})
    assert f"- **Client:** {HOST}" in (tmp_path / "report.md").read_text()


def _run(script: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_bundle_has_the_client_code_and_the_inputs_at_their_own_paths(tmp_path):
    tok = tmp_path / "model"
    tok.mkdir()
    for name in ("tokenizer.json", "config.json", "tokenizer.model", "model.safetensors"):
        (tok / name).write_text(name)
    data = tmp_path / "prompts.json"
    data.write_text("[]")
    out = _run(FILES / "bench_bundle.py", "--client", str(FILES / "bench_client.py"),
               "--tokenizer", str(tok), "--file", str(data), "--file", str(data))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(got["b64"]))) as tar:
        names = set(tar.getnames())
        assert tar.extractfile(str(data).lstrip("/")).read() == b"[]"
    assert names == set(got["members"]) and len(got["members"]) == len(names)
    code = "opt/inferops-disagg-bench/"
    assert {code + "bench_client.py", code + "pdbench/point.py", code + "pdbench/gsm8k.py",
            code + "pdbench/bench_serving.py", code + "benchparse/__init__.py"} <= names
    prefix = str(tok).lstrip("/")
    assert {f"{prefix}/{n}" for n in ("tokenizer.json", "config.json", "tokenizer.model")} <= names
    assert f"{prefix}/model.safetensors" not in names  # no weights


@pytest.fixture
def unpacked(tmp_path) -> dict:
    """The bundle's client code unpacked, and an environment that runs it from there."""
    out = _run(FILES / "bench_bundle.py", "--client", str(FILES / "bench_client.py"))
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(json.loads(out.stdout)["b64"]))) as tar:
        tar.extractall(tmp_path, filter="data")
    code = tmp_path / "opt" / "inferops-disagg-bench"
    env = {"PYTHONPATH": str(code), "PATH": "/usr/bin"}
    return {"client": code / "bench_client.py", "env": env}


def test_client_files_prints_every_file_under_the_paths(tmp_path, unpacked):
    (tmp_path / "r" / "serving" / "p").mkdir(parents=True)
    (tmp_path / "r" / "serving" / "p" / "a.log").write_text("line\n\n")
    (tmp_path / "r" / "serving" / "p" / "a.jsonl").write_text("")
    (tmp_path / "r" / "g.log").write_text("x")
    out = _run(unpacked["client"], "files", str(tmp_path / "r" / "serving"),
               str(tmp_path / "r" / "g.log"), env=unpacked["env"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        str(tmp_path / "r" / "serving" / "p" / "a.jsonl"): "",
        str(tmp_path / "r" / "serving" / "p" / "a.log"): "line\n\n",
        str(tmp_path / "r" / "g.log"): "x",
    }


def test_client_runs_point_and_gsm8k_without_the_report_code(tmp_path, unpacked):
    # the image needs neither matplotlib nor pdbench.report: the sub-commands work from the bundle
    out = _run(unpacked["client"], "point", "--help", env=unpacked["env"])
    assert out.returncode == 0 and "--jsonl" in out.stdout, out.stderr
    out = _run(unpacked["client"], "gsm8k", "--help", env=unpacked["env"])
    assert out.returncode == 0 and "--base-url" in out.stdout, out.stderr
    point = _run(unpacked["client"], "point", "--log", str(tmp_path / "l.log"), "--jsonl",
                 str(tmp_path / "l.jsonl"), "--", "--bogus-flag", env=unpacked["env"])
    assert point.returncode != 0 and json.loads(point.stdout.splitlines()[-1])["rc"] != 0
    assert (tmp_path / "l.log").is_file()


def test_client_write_puts_the_files_under_the_base_only(tmp_path, unpacked):
    base = tmp_path / "bench"
    files = {str(base / "serving" / "p" / "a.log"): "x\n", str(base / "gsm8k" / "g.json"): "{}"}
    out = subprocess.run([sys.executable, str(unpacked["client"]), "write", "--base", str(base)],
                         input=json.dumps(files), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"written": ["gsm8k/g.json", "serving/p/a.log"]}
    assert (base / "serving" / "p" / "a.log").read_text() == "x\n"
    again = subprocess.run([sys.executable, str(unpacked["client"]), "write", "--base", str(base)],
                           input=json.dumps(files), capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout) == {"written": []}  # unchanged: nothing written
    outside = subprocess.run(
        [sys.executable, str(unpacked["client"]), "write", "--base", str(base)],
        input=json.dumps({str(tmp_path / "elsewhere.log"): "x"}), capture_output=True, text=True,
        timeout=60)
    assert outside.returncode != 0 and "is not under" in outside.stderr
    assert not (tmp_path / "elsewhere.log").exists()


def test_client_check_names_what_the_image_lacks(tmp_path):
    """`bench_client.py check` run as the client container runs it: this Python has sglang and
    requests; a Python without site-packages lacks both; one whose path shadows sglang with a
    package that has no bench_serving (an image without SGLang's client) lacks just that."""
    def check(env: dict[str, str], *flags: str) -> tuple[int, dict]:
        done = subprocess.run([sys.executable, *flags, str(FILES / "bench_client.py"), "check"],
                              capture_output=True, text=True, timeout=60, env=env)
        return done.returncode, json.loads(done.stdout)

    base = {"PATH": "/usr/bin:/bin"}
    assert check(base) == (0, {"python": sys.version.split()[0], "missing": []})
    (tmp_path / "sglang").mkdir()
    (tmp_path / "sglang" / "__init__.py").write_text("")
    code, out = check({**base, "PYTHONPATH": str(tmp_path)})
    assert (code, out["missing"]) == (1, ["sglang.bench_serving"])
    # no site-packages at all: no sglang package (the parent is missing), no requests
    code, out = check(base, "-S")
    assert (code, out["missing"]) == (1, ["sglang.bench_serving", "requests"])
