"""router_workers against a stand-in of sglang-router 0.3.2's worker API.

The stand-in serves what the pinned router answered when probed on the rehearsal cluster
(2026-11-27, `curl` against `python -m sglang_router.launch_router --pd-disaggregation`):
``GET /workers`` -> ``{"workers": [{"id": <uuid>, "url", "worker_type", "is_healthy", "load",
"bootstrap_port"}], "total", "stats"}``; ``POST /workers`` -> 202-style ``{"status": "accepted",
"worker_id"...}`` with the worker listed a moment later; ``DELETE /workers/<uuid>`` accepted,
``DELETE /workers/<url>`` -> 400 "Invalid worker_id ... (expected UUID)". Changes land after a
delay, as the router's background job queue does.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _router_workers as rw
from ansible_collections.inferops.disagg.plugins.modules import router_workers

P1 = "http://10.0.0.11:30001"
D1 = "http://10.0.0.21:30002"


class FakeRouter:
    """The worker registry of a router; additions and removals land after ``delay`` seconds;
    a worker added is healthy at once unless its URL is in ``unhealthy``."""

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.workers: dict[str, dict] = {}
        self.unhealthy: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, url: str, worker_type: str, bootstrap_port: int | None = None) -> str:
        worker_id = str(uuid.uuid4())
        entry = {"id": worker_id, "url": url, "worker_type": worker_type, "load": 0,
                 "is_healthy": url not in self.unhealthy}
        if bootstrap_port is not None:
            entry["bootstrap_port"] = bootstrap_port
        with self.lock:
            self.workers[worker_id] = entry
        return worker_id

    def later(self, fn, *args) -> None:
        threading.Timer(self.delay, fn, args).start()

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.calls.append(("GET", self.path))
                with fake.lock:
                    listed = list(fake.workers.values())
                self.reply(200, {"workers": listed, "total": len(listed)})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.calls.append(("POST", json.dumps(body, sort_keys=True)))
                fake.later(fake.add, body["url"], body["worker_type"], body.get("bootstrap_port"))
                self.reply(202, {"status": "accepted", "url": body["url"]})

            def do_DELETE(self) -> None:
                fake.calls.append(("DELETE", self.path))
                worker_id = unquote(self.path.rsplit("/", 1)[1])
                try:
                    uuid.UUID(worker_id)
                except ValueError:
                    self.reply(400, {"error": f"Invalid worker_id '{worker_id}' (expected UUID)"})
                    return
                fake.later(lambda: fake.workers.pop(worker_id, None))
                self.reply(202, {"status": "accepted", "worker_id": worker_id})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def router():
    fake = FakeRouter()
    server, base = fake.serve()
    fake.base = base
    yield fake
    server.shutdown()


def params(router: FakeRouter, **kw) -> dict:
    out = {"router_url": router.base, "url": P1, "state": "present", "worker_type": "prefill",
           "bootstrap_port": 8998, "healthy": True, "reset": False, "wait_timeout": 5,
           "interval": 0.05}
    out.update(kw)
    return out


def test_remove_deletes_by_id_and_waits_until_the_router_no_longer_lists_it(router):
    router.add(P1, "prefill", 8998)
    router.add(D1, "decode")
    result = router_workers.run(params(router, state="absent"), check_mode=False)
    assert result["changed"] and len(result["removed"]) == 1 and not result["added"]
    assert result["workers"] == [f"decode {D1} healthy load=0"]  # listed after the delay
    assert [c for c in router.calls if c[0] == "DELETE"][0][1].startswith("/workers/")
    again = router_workers.run(params(router, state="absent"), check_mode=False)
    assert not again["changed"] and again["removed"] == []


def test_add_waits_until_listed_healthy_and_a_second_run_changes_nothing(router):
    result = router_workers.run(params(router), check_mode=False)
    assert result["changed"] and result["added"]
    assert result["workers"] == [f"prefill {P1} healthy load=0"]
    posted = json.loads([c for c in router.calls if c[0] == "POST"][0][1])
    assert posted == {"url": P1, "worker_type": "prefill", "bootstrap_port": 8998}
    assert result["diff"] == {"before": "", "after": f"prefill {P1} healthy load=0\n"}
    assert not router_workers.run(params(router), check_mode=False)["changed"]


def test_a_worker_registered_with_another_bootstrap_port_is_replaced(router):
    old = router.add(P1, "prefill", 9000)
    result = router_workers.run(params(router), check_mode=False)
    assert result["removed"] == [old] and result["added"]
    (entry,) = router.workers.values()
    assert entry["bootstrap_port"] == 8998 and entry["id"] != old


def test_reset_registers_a_listed_worker_anew(router):
    old = router.add(P1, "prefill", 8998)
    result = router_workers.run(params(router, reset=True), check_mode=False)
    assert result["removed"] == [old] and result["added"]
    (entry,) = router.workers.values()
    assert entry["id"] != old and entry["is_healthy"]


def test_check_mode_reports_and_changes_nothing(router):
    router.add(P1, "prefill", 8998)
    result = router_workers.run(params(router, state="absent"), check_mode=True)
    assert result["changed"] and result["removed"]
    assert [c[0] for c in router.calls] == ["GET"] and len(router.workers) == 1


def test_a_worker_the_router_never_marks_healthy_times_out_naming_what_it_lists(router):
    router.unhealthy.add(P1)
    with pytest.raises(TimeoutError, match=rf"did not show {P1} listed healthy within 1s; "
                                           rf"it lists: prefill {P1} unhealthy load=0"):
        router_workers.run(params(router, wait_timeout=1), check_mode=False)


def test_no_router_is_an_error_naming_the_request():
    p = {"router_url": "http://127.0.0.1:1", "url": P1, "state": "absent", "worker_type": None,
         "bootstrap_port": None, "healthy": True, "reset": False, "wait_timeout": 1,
         "interval": 0.05}
    with pytest.raises(RuntimeError, match=r"GET http://127.0.0.1:1/workers"):
        router_workers.run(p, check_mode=False)


@pytest.mark.parametrize(("listing", "state", "kind", "port", "want"), [
    ({"workers": []}, "present", "decode", None, {"remove": [], "add": True}),
    ({"workers": [{"id": "a", "url": D1, "worker_type": "decode"}]}, "present", "decode", None,
     {"remove": [], "add": False}),
    ({"workers": [{"id": "a", "url": D1 + "/", "worker_type": "decode"}]}, "absent", "", None,
     {"remove": [], "add": False}),  # the router lists URLs without a trailing slash
    ({"workers": [{"id": "a", "url": D1, "worker_type": "prefill", "bootstrap_port": 1}]},
     "present", "decode", None, {"remove": ["a"], "add": True}),
    ({"workers": [{"id": "a", "url": P1, "worker_type": "prefill", "bootstrap_port": 8998}]},
     "present", "prefill", 8998, {"remove": [], "add": False}),
])
def test_decide(listing, state, kind, port, want):
    assert rw.decide(listing, D1 if kind != "prefill" else P1, state, kind, port) == want


@pytest.mark.parametrize("bad", [None, [], {"error": "x"}, "<html>"])
def test_a_listing_that_is_not_the_routers_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="not a /workers listing"):
        rw.decide(bad, D1, "absent")


def test_settled_needs_health_only_when_asked():
    listing = {"workers": [{"id": "a", "url": D1, "worker_type": "decode", "is_healthy": False}]}
    assert not rw.settled(listing, D1, "present", "decode", None, healthy=True)
    assert rw.settled(listing, D1, "present", "decode", None, healthy=False)
    assert not rw.settled(listing, D1, "absent")
