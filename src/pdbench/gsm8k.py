"""Few-shot GSM8K accuracy against an SGLang ``/generate`` endpoint (router or worker).

Measures the way SGLang's ``benchmark/gsm8k`` (``sglang.test.few_shot_gsm8k``) does, written here
from its behaviour (no code copied):

* prompt: the first ``k`` examples of the data file as ``"Question: q\\nAnswer: a"`` joined by a
  blank line, then ``"Question: q\\nAnswer:"`` for each of the first ``n`` questions (as upstream,
  the shots are taken from the same file, so the first ``k`` questions see their own answer);
* generation: greedy (temperature 0), ``max_new_tokens``, stop strings ``Question``,
  ``Assistant:`` and ``<|separator|>``, ``parallel`` requests in flight;
* answer: the last run of digits in the text, commas removed (``#### 1,234`` -> 1234); no digits
  is *invalid*;
* results: accuracy (share of predictions equal to the label), invalid (share without a number),
  latency (wall time of the whole batch, s), output throughput (sum of ``completion_tokens`` /
  latency), printed as ``Accuracy: 0.xxx``, ``Invalid: 0.xxx``, ``Latency: x.xxx s``,
  ``Output throughput: x.xxx token/s`` -- the lines upstream prints and the parser reads.

A request that fails (HTTP error, timeout) counts as invalid and is reported separately
(``Failed requests: N``); the exit code is 1 when more than ``--max-failed`` requests failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import requests

INVALID = None
STOP = ["Question", "Assistant:", "<|separator|>"]
_DIGITS = re.compile(r"\d+")


def answer_value(text: str) -> int | None:
    """The last run of digits in ``text`` (commas removed), or ``None``."""
    found = _DIGITS.findall(text.replace(",", ""))
    return int(found[-1]) if found else INVALID


def load(path: Path) -> list[dict]:
    """GSM8K-format lines: ``{"question": ..., "answer": "... #### N"}``."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SystemExit(f"gsm8k: {path}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not {"question", "answer"} <= set(row):
            raise SystemExit(f"gsm8k: {path}:{number}: needs 'question' and 'answer'")
        rows.append(row)
    if not rows:
        raise SystemExit(f"gsm8k: {path} has no questions")
    return rows


def example(row: dict, with_answer: bool) -> str:
    """One ``Question:``/``Answer:`` block."""
    text = f"Question: {row['question']}\nAnswer:"
    return f"{text} {row['answer']}" if with_answer else text


def prompts(rows: list[dict], num_questions: int, num_shots: int) -> tuple[list[str], list[int]]:
    """The few-shot prompts and labels of the first ``num_questions`` questions."""
    if num_shots > len(rows):
        raise SystemExit(f"gsm8k: {num_shots} shots but the file has {len(rows)} questions")
    shots = "".join(example(rows[i], True) + "\n\n" for i in range(num_shots))
    chosen = rows[:num_questions]
    labels = [answer_value(r["answer"]) for r in chosen]
    bad = [i for i, label in enumerate(labels) if label is INVALID]
    if bad:
        raise SystemExit(f"gsm8k: answers without a number at lines {[i + 1 for i in bad]}")
    return [shots + example(r, False) for r in chosen], labels  # type: ignore[return-value]


def _generate(
    session: requests.Session, url: str, prompt: str, max_new_tokens: int, timeout: float
) -> dict:
    body: dict[str, Any] = {
        "text": prompt,
        "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0, "stop": STOP},
    }
    resp = session.post(f"{url}/generate", json=body, timeout=timeout)
    resp.raise_for_status()
    return resp.json()


def run(
    url: str,
    rows: list[dict],
    num_questions: int,
    num_shots: int,
    parallel: int,
    max_new_tokens: int,
    timeout: float = 600.0,
) -> tuple[dict, list[dict]]:
    """Ask every question; return (result, per-question details)."""
    texts, labels = prompts(rows, num_questions, num_shots)
    url = url.rstrip("/")
    outputs: list[dict | Exception] = [RuntimeError("not run")] * len(texts)
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(parallel, 10))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = {
                pool.submit(_generate, session, url, t, max_new_tokens, timeout): i
                for i, t in enumerate(texts)
            }
            for fut in concurrent.futures.as_completed(futures):
                i = futures[fut]
                try:
                    outputs[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - every failure is counted, not raised
                    outputs[i] = exc
        latency = time.perf_counter() - start
    details = []
    tokens = 0
    for i, out in enumerate(outputs):
        if isinstance(out, Exception):
            details.append({"index": i, "label": labels[i], "pred": None, "error": str(out)})
            continue
        text = out.get("text", "")
        completion = int((out.get("meta_info") or {}).get("completion_tokens") or 0)
        tokens += completion
        details.append(
            {
                "index": i,
                "label": labels[i],
                "pred": answer_value(text),
                "completion_tokens": completion,
                "output": text,
            }
        )
    preds = [d["pred"] for d in details]
    n = len(details)
    result = {
        "accuracy": sum(1 for p, lab in zip(preds, labels, strict=True) if p == lab) / n,
        "invalid": sum(1 for p in preds if p is INVALID) / n,
        "latency": latency,
        "output_throughput": tokens / latency if latency > 0 else 0.0,
        "num_questions": n,
        "num_shots": num_shots,
        "failed_requests": sum(1 for d in details if "error" in d),
        "completion_tokens": tokens,
        "url": url,
    }
    return result, details


def report_lines(result: dict) -> list[str]:
    """The printed result lines: upstream's four, then ours (read by the parser too)."""
    return [
        f"Accuracy: {result['accuracy']:.3f}",
        f"Invalid: {result['invalid']:.3f}",
        f"Latency: {result['latency']:.3f} s",
        f"Output throughput: {result['output_throughput']:.3f} token/s",
        f"Questions: {result['num_questions']}",
        f"Shots: {result['num_shots']}",
        f"Failed requests: {result['failed_requests']}",
    ]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The ``gsm8k`` sub-command's options (upstream's names)."""
    ap.add_argument(
        "--base-url",
        required=True,
        help="router or worker URL, e.g. http://10.0.0.1:30000 (POST /generate)",
    )
    ap.add_argument(
        "--data-path",
        required=True,
        type=Path,
        help="GSM8K-format jsonl (no download: give a local file)",
    )
    ap.add_argument("--num-questions", type=int, default=200)
    ap.add_argument("--num-shots", type=int, default=5)
    ap.add_argument("--parallel", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--timeout", type=float, default=600.0, help="per request, seconds")
    ap.add_argument(
        "--max-failed", type=int, default=0, help="exit 1 when more requests than this failed"
    )
    ap.add_argument("--out-dir", type=Path, help="write gsm8k.json and gsm8k_details.jsonl here")


def main(ns: argparse.Namespace) -> int:
    """Run the evaluation and print the result lines."""
    for name in ("num_questions", "parallel", "max_new_tokens"):
        if getattr(ns, name) < 1:
            raise SystemExit(f"gsm8k: --{name.replace('_', '-')} must be >= 1")
    if ns.num_shots < 0:
        raise SystemExit("gsm8k: --num-shots must be >= 0")
    rows = load(ns.data_path)
    result, details = run(
        ns.base_url,
        rows,
        ns.num_questions,
        ns.num_shots,
        ns.parallel,
        ns.max_new_tokens,
        ns.timeout,
    )
    result["data_path"] = str(ns.data_path)
    for line in report_lines(result):
        print(line, flush=True)
    if ns.out_dir:
        ns.out_dir.mkdir(parents=True, exist_ok=True)
        (ns.out_dir / "gsm8k.log").write_text(
            f"[pdbench] gsm8k {ns.base_url} {ns.data_path}\n"
            + "\n".join(report_lines(result))
            + "\n"
        )
        (ns.out_dir / "gsm8k.json").write_text(json.dumps(result, indent=2) + "\n")
        with (ns.out_dir / "gsm8k_details.jsonl").open("w") as fh:
            for d in details:
                fh.write(json.dumps(d) + "\n")
    if result["failed_requests"] > ns.max_failed:
        print(f"gsm8k: {result['failed_requests']} request(s) failed", file=sys.stderr)
        return 1
    return 0
