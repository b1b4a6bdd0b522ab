# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""The router's worker registry (sglang-router 0.3.2, `/workers`): what to change, and when a
change has settled.

The router's API, as the pinned wheel serves it:

- ``GET /workers`` lists ``{"workers": [{"id", "url", "worker_type", "is_healthy", "load",
  "bootstrap_port"?...}], ...}``;
- ``POST /workers`` with ``{"url", "worker_type", "bootstrap_port"?}`` queues an addition;
- ``DELETE /workers/<id>`` (the UUID the listing gives, not the URL) queues a removal.

Both changes are asynchronous: the caller polls the listing until :func:`settled` says so.
Pure logic; the module ``inferops.disagg.router_workers`` does the HTTP.
"""

from __future__ import annotations

from typing import Any

WORKER_TYPES = ("prefill", "decode")


def entries_all(listing: Any) -> list[dict]:
    """Every entry of a ``/workers`` listing (ValueError when it is not one)."""
    if not isinstance(listing, dict) or not isinstance(listing.get("workers"), list):
        raise ValueError(f"not a /workers listing: {str(listing)[:200]!r}")
    return [w for w in listing["workers"] if isinstance(w, dict)]


def entries(listing: Any, url: str) -> list[dict]:
    """The listing's entries for ``url`` (normally zero or one)."""
    return [w for w in entries_all(listing) if w.get("url") == url.rstrip("/")]


def matches(entry: dict, worker_type: str, bootstrap_port: int | None) -> bool:
    """Whether a listed worker is registered as wanted (type, and a prefill's bootstrap port)."""
    if entry.get("worker_type") != worker_type:
        return False
    return worker_type != "prefill" or entry.get("bootstrap_port") == bootstrap_port


def decide(listing: Any, url: str, state: str, worker_type: str = "",
           bootstrap_port: int | None = None, reset: bool = False) -> dict:
    """What to do so that ``url`` is registered as wanted (``state`` present) or not at all
    (absent): ``{"remove": [ids], "add": bool}``. A worker registered with another type or
    bootstrap port is removed and added again; with ``reset``, one registered as wanted too (a
    fresh circuit breaker)."""
    if state not in ("present", "absent"):
        raise ValueError(f"state must be present or absent, not {state!r}")
    found = entries(listing, url)
    if state == "absent":
        return {"remove": [str(w.get("id")) for w in found], "add": False}
    if worker_type not in WORKER_TYPES:
        raise ValueError(f"worker_type must be prefill or decode, not {worker_type!r}")
    if found and not reset and all(matches(w, worker_type, bootstrap_port) for w in found):
        return {"remove": [], "add": False}
    return {"remove": [str(w.get("id")) for w in found], "add": True}


def add_body(url: str, worker_type: str, bootstrap_port: int | None) -> dict:
    """The ``POST /workers`` body."""
    body: dict[str, Any] = {"url": url.rstrip("/"), "worker_type": worker_type}
    if worker_type == "prefill" and bootstrap_port is not None:
        body["bootstrap_port"] = int(bootstrap_port)
    return body


def settled(listing: Any, url: str, state: str, worker_type: str = "",
            bootstrap_port: int | None = None, healthy: bool = True) -> bool:
    """Whether the router's listing shows the change done: ``url`` gone (absent), or listed as
    wanted and, with ``healthy``, marked healthy (present)."""
    found = entries(listing, url)
    if state == "absent":
        return not found
    return bool(found) and all(
        matches(w, worker_type, bootstrap_port) and (not healthy or w.get("is_healthy") is True)
        for w in found)


def describe(listing: Any) -> list[str]:
    """One line per listed worker: ``prefill http://10.0.0.5:30001 healthy load=0``."""
    out = []
    for w in entries_all(listing):
        health = "healthy" if w.get("is_healthy") else "unhealthy"
        out.append(f"{w.get('worker_type')} {w.get('url')} {health} load={w.get('load', '?')}")
    return out
