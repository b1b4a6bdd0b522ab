"""Run SGLang's own ``python -m sglang.bench_serving`` with one compatibility fix.

Usage: ``python -m pdbench.bench_serving <the same arguments as sglang.bench_serving>``.

Why: after the last request, bench_serving 0.5.2 reads ``GET /get_server_info`` and indexes
``["internal_states"][0]`` (or ``["decode"][0]["internal_states"]``) to print the speculative
"Accept length". The sglang-router in PD mode answers that endpoint with its own summary
(``{"router_manager": true, ...}``), so the client raises ``KeyError: 'internal_states'`` after
every request has finished and before it prints the result block or writes ``--output-file``
(upstream: sgl-project/sglang#6497, seen with v0.5.2 and v0.5.3).

The fix: when ``/get_server_info`` answers 200 with neither key, the response is handed to
bench_serving as ``501``, which is the path bench_serving already has for a server without that
endpoint (``accept_length = None``, the line is not printed). Nothing else is touched: requests,
timing, metrics and the printed block are bench_serving's own code.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

import requests

NOTICE = (
    "pdbench: GET {url} has no 'internal_states' (sglang-router PD summary, sgl-project/sglang"
    "#6497); bench_serving will report no accept length"
)

_real_get = requests.get


def _patched_get(url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
    """``requests.get`` that hides a router's /get_server_info summary from bench_serving."""
    resp = _real_get(url, *args, **kwargs)
    if str(url).rstrip("/").endswith("/get_server_info") and resp.status_code == 200:
        try:
            body = resp.json()
        except ValueError:
            return resp
        if isinstance(body, dict) and "internal_states" not in body and "decode" not in body:
            print(NOTICE.format(url=url), file=sys.stderr, flush=True)
            resp.status_code = 501
    return resp


def main() -> None:
    """Run sglang.bench_serving as ``__main__`` with the patched ``requests.get``."""
    requests.get = _patched_get
    sys.argv[0] = "sglang.bench_serving"
    runpy.run_module("sglang.bench_serving", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
