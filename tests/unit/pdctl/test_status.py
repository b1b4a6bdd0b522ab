"""pdctl status from canned HTTP answers shaped like sglang-router 0.3.2 and the engines."""

from __future__ import annotations

import pytest

from pdctl.inventory import endpoints, group_hosts, model_profile
from pdctl.status import collect_status, render_status

LISTING = {
    "_meta": {"hostvars": {
        "proxy-1": {"ansible_host": "10.0.0.1", "disagg_router_port": 30000},
        "prefill-1": {"ansible_host": "10.0.0.2"},
        "prefill-2": {"disagg_host_address": "10.9.0.3", "ansible_host": "ignored"},
        "decode-1": {"ansible_host": "10.0.0.4", "disagg_decode_port": 31002},
    }},
    "all": {"children": ["ungrouped", "proxy", "workers"]},
    "workers": {"children": ["prefill", "decode"]},
    "proxy": {"hosts": ["proxy-1"]},
    "prefill": {"hosts": ["prefill-1", "prefill-2"]},
    "decode": {"hosts": ["decode-1"]},
}


def _short(entries, *keys):
    return [{k: e[k] for k in ("host", "url", *keys)} for e in entries]


def test_endpoints_from_inventory():
    eps = endpoints(LISTING, {})
    assert eps["router"] == "http://10.0.0.1:30000"
    assert _short(eps["prefill"], "bootstrap_port") == [
        {"host": "prefill-1", "url": "http://10.0.0.2:30001", "bootstrap_port": 8998},
        {"host": "prefill-2", "url": "http://10.9.0.3:30001", "bootstrap_port": 8998}]
    assert _short(eps["decode"]) == [{"host": "decode-1", "url": "http://10.0.0.4:31002"}]


def test_endpoints_multinode_rank0_only_as_the_roles_see_it(tmp_path):
    hostvars = {**LISTING["_meta"]["hostvars"],
                "decode-2": {"ansible_host": "10.0.0.5"},
                "decode-1": {"ansible_host": "10.0.0.4", "disagg_model_profile": "two-node",
                             "disagg_model_profiles_dir": str(tmp_path)}}
    listing = {**LISTING, "_meta": {"hostvars": hostvars},
               "decode": {"hosts": ["decode-1", "decode-2"]}}
    (tmp_path / "two-node.yml").write_text("decode:\n  nnodes: 2\n")
    eps = endpoints(listing, {}, model_profile(listing))
    assert _short(eps["decode"]) == [{"host": "decode-1", "url": "http://10.0.0.4:30002"}]
    assert eps["decode"][0]["hosts"] == ["decode-1", "decode-2"]


def test_endpoints_extra_vars_win_and_templates_are_skipped():
    listing = {**LISTING, "_meta": {"hostvars": {
        **LISTING["_meta"]["hostvars"],
        "prefill-1": {"ansible_host": "10.0.0.2",
                      "disagg_host_address": "{{ ansible_default_ipv4.address }}"}}}}
    eps = endpoints(listing, {"disagg_prefill_port": 40001})
    assert eps["prefill"][0]["url"] == "http://10.0.0.2:40001"


def test_group_hosts_follows_children():
    assert group_hosts(LISTING, "workers") == ["prefill-1", "prefill-2", "decode-1"]
    assert group_hosts(LISTING, "missing") == []


def router_workers(*entries):
    return {"workers": [{"url": u, "worker_type": t, "is_healthy": h} for u, t, h in entries],
            "total": len(entries)}


def fake(answers):
    def fetch(url):
        if url in answers:
            code, body = answers[url]
            return code, body, None
        return None, None, "Connection refused"
    return fetch


def worker_answers(base, kv=None, load=None):
    info = {"version": "0.5.2", "engine": "pd_rehearsal"}
    if kv is not None:
        info["counters"] = kv
    return {f"{base}/health": (200, None),
            f"{base}/get_load": (200, load or [{"dp_rank": 0, "num_reqs": 1,
                                                "num_waiting_reqs": 0, "num_tokens": 9}]),
            f"{base}/get_server_info": (200, info)}


def healthy_cluster():
    eps = endpoints(LISTING, {})
    answers = {"http://10.0.0.1:30000/readiness": (200, None),
               "http://10.0.0.1:30000/health": (200, None),
               "http://10.0.0.1:30000/workers": (200, router_workers(
                   ("http://10.0.0.2:30001", "prefill", True),
                   ("http://10.9.0.3:30001", "prefill", True),
                   ("http://10.0.0.4:31002", "decode", True)))}
    answers.update(worker_answers("http://10.0.0.2:30001", {"kv_bytes_sent": 2048,
                                                            "kv_transfers_sent": 2}))
    answers.update(worker_answers("http://10.9.0.3:30001", {"kv_bytes_sent": 1024,
                                                            "kv_transfers_sent": 1}))
    answers.update(worker_answers("http://10.0.0.4:31002", {"kv_bytes_received": 3072,
                                                            "kv_transfers_received": 3}))
    return eps, answers


def test_healthy_cluster():
    eps, answers = healthy_cluster()
    doc = collect_status(eps, fake(answers))
    assert doc["ok"] is True and doc["problems"] == []
    decode = doc["workers"][2]
    assert (decode["host"], decode["health"], decode["registered"], decode["router_healthy"]) == (
        "decode-1", 200, True, True)
    assert decode["kv"] == {"kv_bytes_received": 3072, "kv_transfers_received": 3}
    assert decode["load"] == {"num_reqs": 1, "num_waiting_reqs": 0, "num_tokens": 9}
    text = render_status(doc)
    assert text.splitlines()[0] == ("router http://10.0.0.1:30000: readiness 200, health 200, "
                                    "3/3 workers healthy")
    assert "- / 3.0 KiB" in text and "0 / 3 (0 failed)" in text
    assert text.endswith("all healthy")


def test_problems_named():
    eps, answers = healthy_cluster()
    answers["http://10.0.0.1:30000/readiness"] = (503, None)
    del answers["http://10.0.0.4:31002/health"]  # decode down
    answers["http://10.0.0.1:30000/workers"] = (200, router_workers(
        ("http://10.0.0.2:30001", "prefill", True),
        ("http://10.0.0.4:31002", "decode", False),
        ("http://10.0.0.9:30002", "decode", True)))  # a worker the inventory does not list
    doc = collect_status(eps, fake(answers))
    assert doc["ok"] is False
    assert doc["problems"] == [
        "router http://10.0.0.1:30000: /readiness 503",
        "prefill prefill-2 http://10.9.0.3:30001: not registered with the router",
        "decode decode-1 http://10.0.0.4:31002: /health Connection refused",
        "decode decode-1 http://10.0.0.4:31002: the router marks it unhealthy",
        "decode (not in inventory) http://10.0.0.9:30002: /health Connection refused",
    ]
    assert "missing" in render_status(doc) and "down" in render_status(doc)


def test_real_sglang_without_counters_and_no_router():
    eps = {"router": None, "prefill": [{"host": "p", "url": "http://p:30001"}], "decode": []}
    answers = worker_answers("http://p:30001", kv=None, load=[
        {"dp_rank": 0, "num_reqs": 2, "num_waiting_reqs": 1},
        {"dp_rank": 1, "num_reqs": 3, "num_waiting_reqs": 0}])
    doc = collect_status(eps, fake(answers))
    assert doc["workers"][0]["kv"] == {} and doc["workers"][0]["load"] == {
        "num_reqs": 5, "num_waiting_reqs": 1}
    assert doc["problems"] == ["no router: the inventory has no proxy host (use --router URL)"]
    assert doc["workers"][0]["registered"] is None


@pytest.mark.parametrize("router", ["http://override:1"])
def test_router_override(router):
    doc = collect_status({"router": "http://x:2", "prefill": [], "decode": []}, fake({}), router)
    assert doc["router"]["url"] == router
