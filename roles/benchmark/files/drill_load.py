# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Steady /generate load through the router for a fault drill (playbooks/drill.yml).

CLIENTS threads each send one request after the other, cycling over PROMPTS fixed prompts at
temperature 0, until STOP_FILE exists or DURATION seconds have passed. Every request becomes one
JSON line in OUT: {"t0", "t1" (epoch s), "ok", "status", "error", "prompt", "text"[, "ttft"]}
(``--stream``: the time to the first streamed event, the time to first token); the drill's
report (module_utils/_drill.py) counts failed and wrong answers from it and times the fault.
Standard library only, so it runs wherever Python 3 does.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

FILLER = ("tell", "me", "about", "disaggregated", "serving", "of", "large", "language", "models",
          "with", "prefill", "and", "decode", "on", "separate", "hosts")


def _read_stream(resp: Any, rec: dict) -> bool:
    """SGLang's /generate stream: ``data: {...}`` events (cumulative text), then ``[DONE]``.
    False when the stream ended before ``[DONE]`` (a worker died mid-answer: the HTTP status was
    already 200, the answer is cut)."""
    for raw in resp:
        line = raw.decode(errors="replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return True
        rec.setdefault("ttft", time.time() - rec["t0"])
        rec["text"] = json.loads(data).get("text")
    return False


def _one(url: str, prompt: str, max_new_tokens: int, timeout: float, stream: bool) -> dict:
    body = json.dumps({"text": prompt, "stream": stream, "sampling_params": {
        "max_new_tokens": max_new_tokens, "temperature": 0}}).encode()
    req = urllib.request.Request(url + "/generate", data=body,
                                 headers={"Content-Type": "application/json"})
    t0 = time.time()
    rec: dict = {"t0": t0, "prompt": prompt, "ok": False, "status": 0, "error": "", "text": None}
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the router URL)
            rec["status"] = resp.status
            complete = True
            if stream:
                complete = _read_stream(resp, rec)
                if not complete:
                    rec["error"] = "stream cut before [DONE] (HTTP 200)"
            else:
                rec["text"] = json.loads(resp.read().decode()).get("text")
            rec["ok"] = resp.status == 200 and complete and isinstance(rec["text"], str)
    except urllib.error.HTTPError as exc:
        rec["status"] = exc.code
        rec["error"] = f"HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}"
    except Exception as exc:  # noqa: BLE001 (every failure is a data point)
        rec["error"] = f"{type(exc).__name__}: {exc}"[:200]
    rec["t1"] = time.time()
    return rec


def main() -> int:
    """Run the load; exit 0 when it stopped as asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--prompt-words", type=int, default=8,
                        help="words of filler each prompt carries (input length)")
    parser.add_argument("--stream", action="store_true", help="stream, and record the TTFT")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--duration", type=float, default=3600.0)
    args = parser.parse_args()
    url = args.url.rstrip("/")
    deadline = time.time() + args.duration
    lock = threading.Lock()
    with open(args.out, "w", encoding="utf-8") as out:
        def client(i: int) -> None:
            k = i
            while not os.path.exists(args.stop_file) and time.time() < deadline:
                prompt = f"drill prompt {k % args.prompts}: " + " ".join(
                    FILLER[(k % args.prompts + w) % len(FILLER)] for w in range(args.prompt_words))
                rec = _one(url, prompt, args.max_new_tokens, args.timeout, args.stream)
                with lock:
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                k += 1
                if not rec["ok"]:
                    time.sleep(0.05)  # no busy loop against a router that refuses at once

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
