"""pdbench gsm8k: answer extraction, prompts, and a run against a canned /generate server."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from pdbench import gsm8k

DATA = Path(__file__).resolve().parents[3] / "data" / "gsm8k-sample" / "test.jsonl"


@pytest.mark.parametrize(("text", "expected"), [
    ("#### 42", 42),
    ("so 3 + 4 = 7 apples. The answer is 1,234", 1234),
    ("first 12 then 5 and finally 6.", 6),
    ("3.5 liters", 5),  # upstream's rule: the last run of digits
    ("no number here", None),
    ("", None),
    ("-8", 8),
])
def test_answer_value(text, expected):
    assert gsm8k.answer_value(text) == expected


def test_sample_data_is_gsm8k_format_with_integer_answers():
    rows = gsm8k.load(DATA)
    assert len(rows) == 32
    for row in rows:
        assert set(row) == {"question", "answer"}
        final = row["answer"].rsplit("####", 1)[1].strip()
        assert final.isdigit() and gsm8k.answer_value(row["answer"]) == int(final)


def test_prompts_use_the_first_k_examples_as_shots():
    rows = gsm8k.load(DATA)
    texts, labels = gsm8k.prompts(rows, num_questions=3, num_shots=2)
    assert len(texts) == 3 and labels == [39, 243, 16]
    shots = (f"Question: {rows[0]['question']}\nAnswer: {rows[0]['answer']}\n\n"
             f"Question: {rows[1]['question']}\nAnswer: {rows[1]['answer']}\n\n")
    assert texts[2] == shots + f"Question: {rows[2]['question']}\nAnswer:"
    assert gsm8k.prompts(rows, 1, 0)[0][0] == f"Question: {rows[0]['question']}\nAnswer:"
    with pytest.raises(SystemExit, match="40 shots but the file has 32"):
        gsm8k.prompts(rows, 1, 40)


@pytest.mark.parametrize(("content", "message"), [
    ("", "has no questions"),
    ("{bad\n", "1: not JSON"),
    ('{"question": "q"}\n', "1: needs 'question' and 'answer'"),
])
def test_load_errors(tmp_path, content, message):
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(SystemExit, match=message):
        gsm8k.load(path)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _serve(answers: dict[str, str], fail: set[str]):
    bodies: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            question = body["text"].rsplit("Question: ", 1)[1]
            if any(question.startswith(f) for f in fail):
                self.send_response(500)
                self.end_headers()
                return
            key = next((k for k in answers if question.startswith(k)), None)
            out = {"text": answers.get(key, " I do not know."),
                   "meta_info": {"completion_tokens": 5}}
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, bodies


def test_run_scores_like_upstream():
    rows = gsm8k.load(DATA)
    # right, right (with commas), wrong, invalid, failed request
    answers = {"Mia": " 4 * 12 = 48, 48 - 9 = 39.\n#### 39", "A bakery": " #### 2,43",
               "Leo": " 240 / 15 = 17"}
    server, bodies = _serve(answers, fail={"A garden"})
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result, details = gsm8k.run(url, rows, num_questions=5, num_shots=1, parallel=3,
                                    max_new_tokens=64)
    finally:
        server.shutdown()
    # Mia right; bakery 243 right; Leo 17 wrong; garden failed; Sara "I do not know" invalid
    assert result["accuracy"] == pytest.approx(2 / 5)
    assert result["invalid"] == pytest.approx(2 / 5)  # the failed request counts as invalid
    assert result["failed_requests"] == 1
    assert result["completion_tokens"] == 20
    assert result["output_throughput"] == pytest.approx(20 / result["latency"])
    assert [d["pred"] for d in details] == [39, 243, 17, None, None]
    sp = bodies[0]["sampling_params"]
    assert sp == {"max_new_tokens": 64, "temperature": 0,
                  "stop": ["Question", "Assistant:", "<|separator|>"]}
    lines = gsm8k.report_lines(result)
    assert lines[0] == "Accuracy: 0.400" and lines[1] == "Invalid: 0.400"
    assert lines[2].startswith("Latency: ") and lines[2].endswith(" s")
    assert lines[3].endswith(" token/s") and lines[-1] == "Failed requests: 1"


# --- which question set: GSM8K's test set on a real engine, the sample for rehearsal only ---

def _write_set(path: Path, count: int) -> Path:
    lines = [json.dumps({"question": f"What is {i} + 1?",
                         "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"})
             for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_choose_a_given_path_wins():
    choice = gsm8k.choose("/data/test.jsonl", rehearsal=False, sample=str(DATA))
    assert choice == {"source": "path", "path": "/data/test.jsonl", "sha256": ""}


def test_choose_the_sample_only_for_rehearsal():
    choice = gsm8k.choose("", rehearsal=True, sample=str(DATA), sha256="")
    assert choice["source"] == "sample" and choice["path"] == str(DATA)


def test_real_engine_without_a_set_stops_with_how_to_provide_it():
    with pytest.raises(SystemExit) as exc:
        gsm8k.choose("", rehearsal=False, sample=str(DATA), url="", sha256="")
    msg = str(exc.value)
    assert "not the project sample" in msg
    assert "benchmark_gsm8k_data=" in msg and "benchmark_gsm8k_sha256" in msg
    assert "1,319" in msg


def test_empty_checksum_refuses_to_fetch():
    with pytest.raises(SystemExit) as exc:
        gsm8k.choose("", rehearsal=False, sample=str(DATA), sha256="", fetch_to="/tmp/x.jsonl")
    msg = str(exc.value)
    assert "refusing to download" in msg and gsm8k.TEST_URL in msg
    assert "benchmark_gsm8k_sha256" in msg and "benchmark_gsm8k_data" in msg


def test_fetch_only_with_a_pinned_sha256():
    digest = "AB" * 32
    choice = gsm8k.choose("", rehearsal=False, sample=str(DATA), sha256=digest,
                          fetch_to="/cache/gsm8k/test.jsonl")
    assert choice == {"source": "fetch", "path": "/cache/gsm8k/test.jsonl",
                      "url": gsm8k.TEST_URL, "sha256": digest.lower()}


def test_a_malformed_sha256_is_refused():
    with pytest.raises(SystemExit, match="64 hex digits"):
        gsm8k.choose("", rehearsal=False, sample=str(DATA), sha256="abc123", fetch_to="/x")


def test_describe_the_sample_in_rehearsal():
    info = gsm8k.describe(DATA, rehearsal=True, sample_sha256=gsm8k.sha256_of(DATA),
                          source="sample")
    assert info["set"] == gsm8k.SAMPLE_SET == "project sample, rehearsal only"
    assert info["questions"] == 32 and info["warnings"] == [] and len(info["sha256"]) == 64


def test_describe_refuses_the_sample_on_a_real_engine(tmp_path):
    copy = tmp_path / "test.jsonl"
    copy.write_bytes(DATA.read_bytes())  # the sample under another name is still the sample
    with pytest.raises(SystemExit, match="rehearsal only"):
        gsm8k.describe(copy, rehearsal=False, sample_sha256=gsm8k.sha256_of(DATA))


def test_describe_a_full_test_set(tmp_path):
    path = _write_set(tmp_path / "test.jsonl", gsm8k.FULL_TEST_QUESTIONS)
    info = gsm8k.describe(path, rehearsal=False, sample_sha256=gsm8k.sha256_of(DATA),
                          sha256=gsm8k.sha256_of(path))
    assert info["set"] == gsm8k.TEST_SET and info["questions"] == 1319
    assert info["warnings"] == [] and info["sha256"] == gsm8k.sha256_of(path)
    assert "GSM8K test set" in gsm8k.set_sentence(info)


def test_describe_warns_when_a_set_is_not_full(tmp_path):
    path = _write_set(tmp_path / "test.jsonl", 100)
    info = gsm8k.describe(path, rehearsal=False, sample_sha256=gsm8k.sha256_of(DATA))
    assert info["questions"] == 100
    assert len(info["warnings"]) == 1 and "1,319" in info["warnings"][0]


@pytest.mark.parametrize(("content", "error"), [
    ('{"question": "q"}\n', "needs 'question' and 'answer'"),
    ("not json\n", "not JSON"),
    ('{"question": "q", "answer": "no number"}\n', "without a number"),
    ("\n", "no questions"),
])
def test_describe_rejects_bad_files(tmp_path, content, error):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SystemExit, match=error):
        gsm8k.describe(path, rehearsal=False, sample_sha256="")


def test_describe_checks_the_pinned_sha256(tmp_path):
    path = _write_set(tmp_path / "test.jsonl", 3)
    with pytest.raises(SystemExit, match="not the pinned file"):
        gsm8k.describe(path, rehearsal=False, sample_sha256="", sha256="0" * 64)


def test_describe_a_missing_file(tmp_path):
    with pytest.raises(SystemExit, match="not a file"):
        gsm8k.describe(tmp_path / "none.jsonl", rehearsal=False, sample_sha256="")


def test_cli_choose_and_check(tmp_path, capsys):
    from pdbench import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["gsm8k", "--choose", "--engine", "real", "--sample-path", str(DATA)])
    assert "benchmark_gsm8k_sha256" in str(exc.value)
    assert cli.main(["gsm8k", "--choose", "--engine", "rehearsal",
                     "--sample-path", str(DATA)]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "sample"
    assert cli.main(["gsm8k", "--check", "--engine", "rehearsal", "--data-path", str(DATA),
                     "--sample-path", str(DATA), "--source", "sample"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["set"] == gsm8k.SAMPLE_SET and info["source"] == "sample"


def test_report_names_the_question_set(tmp_path):
    from pdbench import report

    info = {"set": gsm8k.TEST_SET, "path": "/d/test.jsonl", "questions": 1319, "sha256": "ab" * 32,
            "source": "fetch", "url": gsm8k.TEST_URL, "warnings": []}
    lines = report.gsm8k_set_lines(info)
    assert "**GSM8K test set**" in lines[0] and "1319 questions" in lines[0]
    assert gsm8k.TEST_URL in lines[0]
    sample = dict(info, set=gsm8k.SAMPLE_SET, questions=32, source="sample",
                  warnings=["w"])
    lines = report.gsm8k_set_lines(sample)
    assert "project sample, rehearsal only" in lines[0]
    assert any("not a GSM8K accuracy number" in x for x in lines) and "- warning: w" in lines
    assert report.gsm8k_set_lines(None) == []
