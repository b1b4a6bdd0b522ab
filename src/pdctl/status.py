"""``pdctl status``: the live cluster over HTTP, no Ansible run.

Router: ``/readiness``, ``/health`` and ``/workers`` (the real sglang-router lists every worker
with ``worker_type`` and ``is_healthy``). Every worker (from the inventory, plus any the router
knows that the inventory does not): ``/health``, ``/get_load`` and ``/get_server_info`` (the
rehearsal engine adds ``counters`` with the KV transfer counters: ``kv_bytes_sent``,
``kv_bytes_received``, ``kv_transfers_sent``, ``kv_transfers_received``,
``kv_transfer_failures``, ``kv_verify_failures``; a real SGLang server has none and they show
as ``-``). Exit 0 when the router is ready and every inventory worker is healthy and
registered healthy with the router; 1 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from pdctl import exitcodes
from pdctl.inventory import InventoryError, endpoints, load_inventory, model_profile
from pdctl.summary import table

# (status code or None, parsed JSON or None, error text or None)
Fetched = tuple[int | None, Any, str | None]
Fetch = Callable[[str], Fetched]

KV_COUNTERS = ("kv_bytes_sent", "kv_bytes_received", "kv_transfers_sent",
               "kv_transfers_received", "kv_transfer_failures", "kv_verify_failures")


def http_fetch(timeout: float) -> Fetch:
    """A ``Fetch`` over ``requests`` with a per-request timeout (errors become text)."""
    import requests

    def fetch(url: str) -> Fetched:
        try:
            resp = requests.get(url, timeout=timeout)
        except requests.Timeout:
            return None, None, f"no answer within {timeout:g}s"
        except requests.RequestException as exc:
            errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
            return None, None, errno.group(1).strip() if errno else type(exc).__name__
        try:
            body = resp.json()
        except ValueError:
            body = None
        return resp.status_code, body, None

    return fetch


@dataclass
class WorkerStatus:
    """One worker as seen directly and through the router."""

    role: str
    host: str | None
    url: str
    health: int | None = None
    registered: bool | None = None
    router_healthy: bool | None = None
    load: dict[str, Any] = field(default_factory=dict)
    kv: dict[str, Any] = field(default_factory=dict)
    engine: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Healthy itself and, when the router was read, registered healthy there."""
        return self.health == 200 and self.registered is not False and \
            self.router_healthy is not False


def _load(body: Any) -> dict[str, Any]:
    """Sum SGLang's ``/get_load`` (one entry per DP rank) into one dict."""
    entries = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    total: dict[str, Any] = {}
    for entry in entries:
        for key, value in (entry or {}).items():
            if key != "dp_rank" and isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total


def _norm(url: str) -> str:
    return url.rstrip("/").lower()


def probe_worker(worker: WorkerStatus, fetch: Fetch) -> WorkerStatus:
    """Fill ``health``, ``load``, ``kv`` and ``engine`` of ``worker`` from its own API."""
    base = worker.url.rstrip("/")
    worker.health, _, worker.error = fetch(f"{base}/health")
    if worker.health is None:
        return worker
    code, body, _ = fetch(f"{base}/get_load")
    if code == 200:
        worker.load = _load(body)
    code, body, _ = fetch(f"{base}/get_server_info")
    if code == 200 and isinstance(body, dict):
        counters = body.get("counters") or {}
        worker.kv = {k: counters[k] for k in KV_COUNTERS if k in counters}
        worker.engine = body.get("engine") or (f"sglang {body['version']}"
                                               if body.get("version") else None)
    return worker


def collect_status(endpoint_map: dict[str, Any], fetch: Fetch,
                   router: str | None = None) -> dict[str, Any]:
    """Read the router and every worker; the status document (without exit code)."""
    router_url = router or endpoint_map.get("router")
    workers = [WorkerStatus(role, e.get("host"), e["url"])
               for role in ("prefill", "decode") for e in endpoint_map.get(role) or []]
    problems: list[str] = []
    doc_router: dict[str, Any] = {"url": router_url}
    if router_url:
        base = router_url.rstrip("/")
        with ThreadPoolExecutor(3) as pool:
            readiness, health, listed = pool.map(fetch, [f"{base}/readiness", f"{base}/health",
                                                         f"{base}/workers"])
        doc_router.update(readiness=readiness[0], health=health[0],
                          error=readiness[2] or health[2])
        listed_workers = (listed[1] or {}).get("workers") if isinstance(listed[1], dict) else None
        doc_router["workers"] = listed_workers
        if readiness[0] != 200:
            problems.append(f"router {router_url}: /readiness "
                            f"{readiness[0] if readiness[0] is not None else readiness[2]}")
        if listed_workers is not None:
            by_url = {_norm(w.get("url", "")): w for w in listed_workers}
            for worker in workers:
                seen = by_url.pop(_norm(worker.url), None)
                worker.registered = seen is not None
                worker.router_healthy = bool(seen.get("is_healthy")) if seen else None
            for extra in by_url.values():  # workers the router has but the inventory lacks
                workers.append(WorkerStatus(str(extra.get("worker_type", "?")), None,
                                            str(extra.get("url")), registered=True,
                                            router_healthy=bool(extra.get("is_healthy"))))
    else:
        problems.append("no router: the inventory has no proxy host (use --router URL)")
    with ThreadPoolExecutor(max(1, min(16, len(workers)))) as pool:
        workers = list(pool.map(lambda w: probe_worker(w, fetch), workers))
    for w in workers:
        name = f"{w.role} {w.host or '(not in inventory)'} {w.url}"
        if w.health != 200:
            problems.append(f"{name}: /health {w.health if w.health is not None else w.error}")
        if w.registered is False:
            problems.append(f"{name}: not registered with the router")
        elif w.router_healthy is False:
            problems.append(f"{name}: the router marks it unhealthy")
    return {"schema": "pdctl.status/v1", "ok": not problems, "router": doc_router,
            "workers": [{**asdict(w), "ok": w.ok} for w in workers], "problems": problems}


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)  # pragma: no cover


def render_status(doc: dict[str, Any]) -> str:
    """The status as a table (router line, one row per worker, then the problems)."""
    r = doc["router"]
    listed = r.get("workers")
    healthy = sum(1 for w in listed or [] if w.get("is_healthy"))

    def code(value: Any) -> str:
        return "down" if value is None else str(value)

    out = [f"router {r.get('url') or '-'}: readiness {code(r.get('readiness'))}, "
           f"health {code(r.get('health'))}"
           + (f", {healthy}/{len(listed)} workers healthy" if listed is not None else "")]
    rows = []
    for w in doc["workers"]:
        kv = w["kv"]
        sent_recv = (f"{_size(kv.get('kv_bytes_sent'))} / {_size(kv.get('kv_bytes_received'))}"
                     if kv else "-")
        transfers = (f"{kv.get('kv_transfers_sent', 0)} / {kv.get('kv_transfers_received', 0)}"
                     f" ({kv.get('kv_transfer_failures', 0)} failed)" if kv else "-")
        router_col = ("-" if w["registered"] is None else "missing" if not w["registered"]
                      else "healthy" if w["router_healthy"] else "unhealthy")
        load = w["load"]
        rows.append([w["role"], w["host"] or "?", w["url"],
                     str(w["health"] if w["health"] is not None else "down"), router_col,
                     f"{load.get('num_reqs', '-')}/{load.get('num_waiting_reqs', '-')}"
                     if load else "-", sent_recv, transfers])
    if rows:
        headers = ["role", "host", "url", "health", "router", "reqs/waiting",
                   "kv sent / received", "transfers sent / received"]
        out += table(rows, headers)
    if doc["problems"]:
        out += ["problems:", *(f"  {p}" for p in doc["problems"])]
    else:
        out.append("all healthy")
    return "\n".join(out)


def run_status(inventory: str, *, router: str | None = None, timeout: float = 5.0,
               fetch: Fetch | None = None) -> tuple[dict[str, Any], str, int]:
    """``pdctl status``: (JSON document, text, exit code)."""
    try:
        listing = load_inventory(inventory)
        endpoint_map = endpoints(listing, {}, model_profile(listing))
    except InventoryError as exc:
        doc = {"schema": "pdctl.status/v1", "ok": False, "exit_code": exitcodes.ERROR,
               "inventory": inventory, "router": {}, "workers": [], "problems": [str(exc)]}
        return doc, f"status: {exc}", exitcodes.ERROR
    doc = collect_status(endpoint_map, fetch or http_fetch(timeout), router)
    code = exitcodes.OK if doc["ok"] else exitcodes.ERROR
    doc = {**doc, "exit_code": code, "inventory": inventory}
    return doc, render_status(doc), code
