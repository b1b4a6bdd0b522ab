#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402, E501  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: bench_parse
short_description: Parse SGLang bench_serving and GSM8K output into CSV, JSON and Markdown
version_added: 0.1.0
description:
  - Reads C(python -m sglang.bench_serving) logs (the C(Serving Benchmark Result) block of SGLang
    0.3 to 0.5 and vLLM's variant, with interleaved log noise), its C(--output-file) JSONL records
    and GSM8K result lines (C(Accuracy:), C(Invalid:), C(Latency:), C(Output throughput:)).
  - A log and a JSONL file with the same name stem are the same runs; the printed values are kept
    and the record adds what the block does not print (TPOT, p99 E2E).
  - Context of each run comes from the seed's C([RUNNING] prompts N isl I osl O con C ...) and
    C(RUNNING:) markers and bench_serving's C(benchmark_args=Namespace(...)) line; failed requests
    are the block's C(Failed requests) line or the run's prompt count minus C(Successful
    requests).
  - Known request errors are named and counted per run (C(known_errors)). C(transfer_encoding_400)
    is aiohttp's C(TransferEncodingError) 400, "Not enough data to satisfy transfer length
    header" (the seed's known issue at concurrency 512+), found in bench_serving's
    C(output.error=) lines, in bare log lines and in multi-line tracebacks (one chained traceback
    counts once). RV(summary.known_errors) adds, per error and concurrency, a hint naming the
    router settings to look at. Other errors are still counted in C(error_lines).
  - With O(dest), writes C(bench.csv) (the seed's C(benchmark_parser.py) columns first),
    C(bench.json) and C(bench.md) (failed requests in red), only when their content changes.
  - Runs on the controller (delegated to C(localhost)); needs only the Python standard library.
options:
  src:
    description:
      - Files or directories (searched recursively for C(*.log), C(*.jsonl), C(*.txt), C(*.out)).
      - JSONL files that are not bench_serving records (for example GSM8K per-question details)
        are skipped and listed in RV(summary.skipped_files).
    type: list
    elements: path
    required: true
  dest:
    description: Directory for C(bench.csv), C(bench.json) and C(bench.md). Omit to only parse.
    type: path
  base:
    description: Record file names relative to this directory in the tables.
    type: path
  allow_truncated:
    description:
      - By default a truncated result block (the log stops inside it) fails the task with the file
        and line. V(true) keeps it as a row with an C(error) and counts it in
        RV(summary.truncated_blocks).
    type: bool
    default: false
  title:
    description: Title of C(bench.md).
    type: str
    default: Benchmark results
  meta:
    description: Stored under C(meta) in C(bench.json) (run id, router URL, ...).
    type: dict
    default: {}
extends_documentation_fragment:
  - inferops.disagg._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports which of the three files would be written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A file is written only when its content changes.
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Tables of a benchmark run
  inferops.disagg.bench_parse:
    src:
      - "{{ run_dir }}/bench/serving"
      - "{{ run_dir }}/bench/gsm8k"
    base: "{{ run_dir }}/bench"
    dest: "{{ run_dir }}/bench/results"
    meta:
      run_id: "{{ run_id }}"
  delegate_to: localhost
  register: __bench

- name: No request may fail
  ansible.builtin.assert:
    that: __bench.summary.failed_requests == 0
    fail_msg: "{{ __bench.summary.failed_requests }} requests failed"
"""

RETURN = r"""
runs:
  description: One entry per bench_serving run, keys as in the C(--output-file) records.
  returned: always
  type: list
  elements: dict
  sample:
    - {max_concurrency: 8, isl: 64, osl: 32, num_prompts: 16, successful_requests: 16,
       failed_requests: 0, output_throughput: 759.85, median_ttft_ms: 64.49, source: con8.log,
       error_lines: 0, known_errors: {}}
    - {max_concurrency: 512, num_prompts: 1024, successful_requests: 999, failed_requests: 25,
       error_lines: 25, known_errors: {transfer_encoding_400: {requests: 25, lines: 0}}}
gsm8k:
  description: One entry per GSM8K result (accuracy, invalid, latency_s, output_throughput).
  returned: always
  type: list
  elements: dict
summary:
  description: Totals.
  returned: always
  type: dict
  contains:
    runs:
      description: Number of runs.
      type: int
      returned: always
    failed_requests:
      description: Failed requests over all runs.
      type: int
      returned: always
    truncated_blocks:
      description: Runs whose result block is truncated (only with O(allow_truncated)).
      type: int
      returned: always
    runs_with_failures:
      description: The runs with failed requests, known errors or a truncated block.
      type: list
      returned: always
    known_errors:
      description:
        - One entry per known error and concurrency, in the order of the known errors, then by
          concurrency.
        - C(key) (for example C(transfer_encoding_400)), C(name), C(description),
          C(max_concurrency), C(requests) (C(output.error=) lines, one per failed request),
          C(lines) (occurrences elsewhere, a chained traceback counted once), C(affected)
          (requests, else lines, summed over the runs), C(runs) (C(source:line) of each run) and
          C(hint) (the router settings to look at, see the router role's README).
      type: list
      elements: dict
      returned: always
      sample:
        - {key: transfer_encoding_400, name: TransferEncodingError, max_concurrency: 512,
           requests: 25, lines: 0, affected: 25, runs: [con512.log:38]}
    warnings:
      description: Logs and records that disagree or could not be paired.
      type: list
      returned: always
    skipped_files:
      description: JSONL files that are not bench_serving records.
      type: list
      returned: always
  sample: {runs: 9, requests: 4224, failed_requests: 0, truncated_blocks: 0}
files:
  description: The files written (or that would be written in check mode), by format.
  returned: when O(dest) is set
  type: dict
  sample: {csv: /runs/r1/bench/results/bench.csv}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferops.disagg.plugins.module_utils.benchparse import (
    collect,
    document_markdown,
    json_safe,
    to_csv,
)

_SUFFIXES = (".log", ".jsonl", ".txt", ".out")


def _files(paths: list[str], module: AnsibleModule) -> list[str]:
    """The files to parse: files as given, directories searched recursively (sorted)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    if name.endswith(_SUFFIXES):
                        found.append(os.path.join(root, name))
        elif os.path.isfile(path):
            found.append(path)
        else:
            module.fail_json(msg=f"{path} does not exist")
    return found


def _read(paths: list[str], base: str | None) -> list[tuple[str, str]]:
    """``(name, text)`` of each file, names relative to ``base`` when it is set."""
    files = []
    for path in paths:
        name = os.path.relpath(path, base) if base else path
        with open(path, encoding="utf-8", errors="replace") as fh:
            files.append((name, fh.read()))
    return files


def _outputs(doc: dict, title: str) -> dict[str, str]:
    """The contents of ``bench.csv``, ``bench.json`` and ``bench.md``."""
    return {
        "csv": to_csv(doc["runs"]),
        "json": json.dumps(json_safe(doc), indent=1, sort_keys=True) + "\n",
        "md": document_markdown(doc, title),
    }


def _write_changed(dest: str, contents: dict[str, str], check_mode: bool) -> dict:
    """Write the outputs whose content changed (atomically); ``changed``, ``files``, ``actions``."""
    paths = {k: os.path.join(dest, f"bench.{k}") for k in contents}
    changed = []
    for key, text in contents.items():
        old = None
        if os.path.isfile(paths[key]):
            with open(paths[key], encoding="utf-8") as fh:
                old = fh.read()
        if old != text:
            changed.append(key)
    if changed and not check_mode:
        os.makedirs(dest, exist_ok=True)
        for key in changed:
            tmp = paths[key] + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(contents[key])
            os.replace(tmp, paths[key])
    return dict(changed=bool(changed), files=paths, actions=[f"write {paths[k]}" for k in changed])


def main() -> None:
    """Parse the files, return the runs and summary, write the tables when O(dest) is set."""
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="list", elements="path", required=True),
            dest=dict(type="path"),
            base=dict(type="path"),
            allow_truncated=dict(type="bool", default=False),
            title=dict(type="str", default="Benchmark results"),
            meta=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    files = _read(_files(p["src"], module), p["base"])
    try:
        doc = collect(files, strict=not p["allow_truncated"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    doc["meta"] = p["meta"]
    result = dict(
        changed=False, runs=json_safe(doc["runs"]), gsm8k=doc["gsm8k"], summary=doc["summary"]
    )
    if p["dest"]:
        result.update(_write_changed(p["dest"], _outputs(doc, p["title"]), module.check_mode))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
