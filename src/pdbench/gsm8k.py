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

Which question set (``choose``, ``describe``; ``--choose`` and ``--check`` on the command line,
used by the ``benchmark`` role): a real engine's accuracy comes from GSM8K's test set (1,319
questions, ``test.jsonl`` of openai/grade-school-math), given by path or fetched from a URL with a
pinned sha256 (never unverified); the project's 32-question sample is for rehearsal only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
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
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: Questions in GSM8K's test set (``grade_school_math/data/test.jsonl``).
FULL_TEST_QUESTIONS = 1319
#: Its canonical URL (openai/grade-school-math).
TEST_URL = (
    "https://raw.githubusercontent.com/openai/grade-school-math/master/"
    "grade_school_math/data/test.jsonl"
)
SAMPLE_SET = "project sample, rehearsal only"
TEST_SET = "GSM8K test set"
HOW_TO_PROVIDE = (
    "give GSM8K's test set (1,319 questions, test.jsonl of openai/grade-school-math) either as "
    "a file on the controller (-e benchmark_gsm8k_data=/path/to/test.jsonl) or as a URL the "
    "controller can reach plus its pinned checksum (benchmark_gsm8k_url, default "
    + TEST_URL
    + ", and benchmark_gsm8k_sha256=<64 hex digits>, the output of `sha256sum test.jsonl` on a "
    "copy you trust); or set benchmark_gsm8k: false to skip GSM8K"
)


def answer_value(text: str) -> int | None:
    """The last run of digits in ``text`` (commas removed), or ``None``."""
    found = _DIGITS.findall(text.replace(",", ""))
    return int(found[-1]) if found else INVALID


def load(path: Path) -> list[dict]:
    """GSM8K-format lines: ``{"question": ..., "answer": "... #### N"}``."""
    if not path.is_file():
        raise SystemExit(f"gsm8k: {path} is not a file on the controller")
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


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def choose(
    data: str,
    *,
    rehearsal: bool,
    sample: str,
    url: str = TEST_URL,
    sha256: str = "",
    fetch_to: str = "",
) -> dict[str, str]:
    """Which GSM8K file to use, before any file is read.

    ``data`` (a path) wins; else the rehearsal engine gets the project ``sample``; else the file
    at ``url`` is fetched to ``fetch_to``, but only with a pinned ``sha256``. Anything else stops
    (``SystemExit``) with how to provide the set.
    """
    data, url, sha256 = data.strip(), url.strip(), sha256.strip().lower()
    if sha256 and not _SHA256.fullmatch(sha256):
        raise SystemExit(
            f"gsm8k: benchmark_gsm8k_sha256 {sha256!r} is not a sha256 (64 hex digits)"
        )
    if data:
        return {"source": "path", "path": data, "sha256": sha256}
    if rehearsal:
        return {"source": "sample", "path": sample, "sha256": ""}
    if not url:
        raise SystemExit(
            "gsm8k: a real engine's accuracy needs GSM8K's test set, not the project sample, "
            "and no benchmark_gsm8k_data or benchmark_gsm8k_url is set: " + HOW_TO_PROVIDE
        )
    if not sha256:
        raise SystemExit(
            f"gsm8k: refusing to download {url} without a pinned checksum (benchmark_gsm8k_sha256 "
            "is empty; nothing is ever downloaded unverified), and a real engine's accuracy needs "
            "GSM8K's test set, not the project sample: " + HOW_TO_PROVIDE
        )
    if not fetch_to:
        raise SystemExit("gsm8k: no destination for the fetched test set (--fetch-to)")
    return {"source": "fetch", "path": fetch_to, "url": url, "sha256": sha256}


def describe(
    path: Path,
    *,
    rehearsal: bool,
    sample_sha256: str,
    source: str = "path",
    sha256: str = "",
    expected: int = FULL_TEST_QUESTIONS,
) -> dict[str, Any]:
    """Check a GSM8K file and say what it is.

    Every line must be ``{"question", "answer"}`` with a number in the answer; ``sha256`` (when
    given) must match. The project sample (recognised by its checksum) is refused unless
    ``rehearsal``. A file that is not the sample but does not have ``expected`` questions gets a
    warning (not a full test set). Returns path, questions, sha256, set, source, warnings.
    """
    rows = load(path)
    digest = sha256_of(path)
    no_number = [
        i
        for i, r in enumerate(rows, 1)
        if not isinstance(r["question"], str)
        or not isinstance(r["answer"], str)
        or answer_value(r["answer"]) is INVALID
    ]
    if no_number:
        raise SystemExit(
            f"gsm8k: {path}: questions/answers that are not text or answers without a number "
            f"(question {no_number[:10]}{' ...' if len(no_number) > 10 else ''})"
        )
    is_sample = digest == sample_sha256
    if is_sample and not rehearsal:
        raise SystemExit(
            f"gsm8k: {path} is the project's {len(rows)}-question sample, for rehearsal only: a "
            "real engine's accuracy never comes from it; " + HOW_TO_PROVIDE
        )
    if sha256 and digest != sha256.lower() and not (is_sample and rehearsal):
        raise SystemExit(
            f"gsm8k: {path} has sha256 {digest}, benchmark_gsm8k_sha256 says {sha256}: "
            "not the pinned file. Fix: give GSM8K's test.jsonl as published (openai/"
            "grade-school-math), or set benchmark_gsm8k_sha256 to this file's checksum (or \"\" "
            "to use it unverified)"
        )
    warnings = []
    if not is_sample and len(rows) != expected:
        warnings.append(
            f"{path} has {len(rows)} questions, GSM8K's test set has {expected:,}: not the full "
            "test set, the accuracy is not comparable with published GSM8K numbers"
        )
    return {
        "path": str(path),
        "questions": len(rows),
        "sha256": digest,
        "set": SAMPLE_SET if is_sample else TEST_SET,
        "source": source,
        "warnings": warnings,
    }


def set_sentence(info: dict) -> str:
    """One line naming the question set (for logs and the report)."""
    return (
        f"{info.get('set', '?')}: {info.get('path', '?')}, {info.get('questions', '?')} "
        f"questions, sha256 {info.get('sha256', '?')}"
    )


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
    """The ``gsm8k`` sub-command's options (upstream's names, then the set choice/check)."""
    ap.add_argument(
        "--base-url",
        default="",
        help="router or worker URL, e.g. http://10.0.0.1:30000 (POST /generate); needed to run",
    )
    ap.add_argument(
        "--data-path",
        default="",
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
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--choose",
        action="store_true",
        help="print (JSON) which file to use: --data-path, the sample, or a fetch",
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="check --data-path and print (JSON) its set, questions and sha256; no requests",
    )
    ap.add_argument(
        "--engine",
        choices=["real", "rehearsal"],
        default="real",
        help="rehearsal: the rehearsal engine, which may use the project sample",
    )
    ap.add_argument("--sample-path", default="", help="the project's sample (rehearsal only)")
    ap.add_argument("--url", default=TEST_URL, help="where to fetch the test set (with --sha256)")
    ap.add_argument("--sha256", default="", help="pinned sha256 of the test set")
    ap.add_argument("--fetch-to", default="", help="where the fetched test set goes")
    ap.add_argument("--source", default="path", help="how the file was chosen (recorded)")
    ap.add_argument(
        "--expect-questions",
        type=int,
        default=FULL_TEST_QUESTIONS,
        help="questions of the full test set (warn otherwise)",
    )


def _sample_sha256(ns: argparse.Namespace) -> str:
    sample = Path(ns.sample_path) if ns.sample_path else None
    return sha256_of(sample) if sample and sample.is_file() else ""


def main(ns: argparse.Namespace) -> int:
    """Choose or check the set (``--choose``/``--check``), or run the evaluation."""
    if ns.choose:
        choice = choose(
            ns.data_path,
            rehearsal=ns.engine == "rehearsal",
            sample=ns.sample_path,
            url=ns.url,
            sha256=ns.sha256,
            fetch_to=ns.fetch_to,
        )
        print(json.dumps(choice))
        return 0
    if not ns.data_path:
        raise SystemExit("gsm8k: --data-path is required")
    data_path = Path(ns.data_path)
    if ns.check:
        info = describe(
            data_path,
            rehearsal=ns.engine == "rehearsal",
            sample_sha256=_sample_sha256(ns),
            source=ns.source,
            sha256=ns.sha256,
            expected=ns.expect_questions,
        )
        print(json.dumps(info))
        return 0
    if not ns.base_url:
        raise SystemExit("gsm8k: --base-url is required")
    for name in ("num_questions", "parallel", "max_new_tokens"):
        if getattr(ns, name) < 1:
            raise SystemExit(f"gsm8k: --{name.replace('_', '-')} must be >= 1")
    if ns.num_shots < 0:
        raise SystemExit("gsm8k: --num-shots must be >= 0")
    rows = load(data_path)
    result, details = run(
        ns.base_url,
        rows,
        ns.num_questions,
        ns.num_shots,
        ns.parallel,
        ns.max_new_tokens,
        ns.timeout,
    )
    sample_sha = _sample_sha256(ns)
    digest = sha256_of(data_path)
    result["data_path"] = str(data_path)
    result["data_questions"] = len(rows)
    result["data_sha256"] = digest
    if sample_sha:
        result["data_set"] = SAMPLE_SET if digest == sample_sha else TEST_SET
    for line in report_lines(result):
        print(line, flush=True)
    if ns.out_dir:
        ns.out_dir.mkdir(parents=True, exist_ok=True)
        (ns.out_dir / "gsm8k.log").write_text(
            f"[pdbench] gsm8k {ns.base_url} {data_path}\n"
            + (f"[pdbench] set: {set_sentence(_set_info(result))}\n" if sample_sha else "")
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


def _set_info(result: dict) -> dict:
    return {
        "set": result.get("data_set"),
        "path": result.get("data_path"),
        "questions": result.get("data_questions"),
        "sha256": result.get("data_sha256"),
    }
