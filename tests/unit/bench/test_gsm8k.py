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
