"""Endpoints computed once from the inventory: the filter, pdctl and the roles' defaults agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.inferops.disagg.plugins.module_utils.disagg_endpoints import (
    DEFAULT_SETTINGS,
    EndpointError,
    compute_endpoints,
)

REPO = Path(__file__).resolve().parents[4]

GROUPS = {"proxy": ["proxy-1"], "prefill": ["prefill-1", "prefill-2"], "decode": ["decode-1"]}
HOSTVARS = {
    "proxy-1": {"ansible_host": "10.0.0.1"},
    "prefill-1": {"ansible_host": "10.0.0.11"},
    "prefill-2": {"ansible_host": "10.0.0.12", "disagg_host_address": "192.168.0.12"},
    "decode-1": {"ansible_host": "10.0.0.21"},
}


def test_defaults_match_the_collection_wide_role_defaults() -> None:
    defaults = yaml.safe_load((REPO / "roles/_common/defaults/main.yml").read_text())
    assert {k: defaults[k] for k in DEFAULT_SETTINGS} == DEFAULT_SETTINGS


def test_2p1d_urls_bootstrap_ports_and_router() -> None:
    ep = compute_endpoints(GROUPS, HOSTVARS)
    assert ep["router"] == "http://10.0.0.1:30000"
    assert ep["routers"][0]["prometheus_port"] == 29000
    assert [p["url"] for p in ep["prefill"]] == ["http://10.0.0.11:30001", "http://192.168.0.12:30001"]
    assert [p["bootstrap_port"] for p in ep["prefill"]] == [8998, 8998]
    assert [d["url"] for d in ep["decode"]] == ["http://10.0.0.21:30002"]
    assert ep["workers"]["decode-1"]["decode"]["serves_http"] is True


def test_host_vars_beat_settings_and_role_vars_beat_collection_vars() -> None:
    hostvars = {**HOSTVARS,
                "prefill-1": {**HOSTVARS["prefill-1"], "disagg_prefill_port": 31001},
                "prefill-2": {**HOSTVARS["prefill-2"], "disagg_prefill_port": 31001,
                              "sglang_worker_port": 32001, "sglang_worker_bootstrap_port": 9000},
                "proxy-1": {**HOSTVARS["proxy-1"], "router_port": 8080,
                            "router_address": "router.example"}}
    ep = compute_endpoints(GROUPS, hostvars, {"disagg_decode_port": 40002})
    assert [p["port"] for p in ep["prefill"]] == [31001, 32001]
    assert ep["prefill"][1]["bootstrap_port"] == 9000
    assert ep["decode"][0]["port"] == 40002
    assert ep["router"] == "http://router.example:8080"


def test_multinode_instances_rank0_serves_and_dist_init_addr() -> None:
    groups = {"proxy": ["p"], "prefill": ["pf"], "decode": ["d1", "d2", "d3", "d4"]}
    hostvars = {h: {"ansible_host": f"10.1.0.{i}"} for i, h in enumerate(["p", "pf", "d1", "d2",
                                                                          "d3", "d4"])}
    ep = compute_endpoints(groups, hostvars, {}, {"decode": {"nnodes": 2}})
    instances = [(d["host"], d["hosts"]) for d in ep["decode"]]
    assert instances == [("d1", ["d1", "d2"]), ("d3", ["d3", "d4"])]
    d4 = ep["workers"]["d4"]["decode"]
    assert (d4["node_rank"], d4["leader"], d4["serves_http"]) == (1, "d3", False)
    assert d4["dist_init_addr"] == "10.1.0.4:5757"  # d3's address, the instance's rank 0


def test_untemplated_values_from_ansible_inventory_fall_back() -> None:
    hostvars = {**HOSTVARS, "decode-1": {"ansible_host": "10.0.0.21",
                                         "disagg_decode_port": "{{ some_var }}"}}
    assert compute_endpoints(GROUPS, hostvars)["decode"][0]["port"] == 30002


@pytest.mark.parametrize("value", ["http", 0, 70000])
def test_bad_port_names_host_variable_and_fix(value: object) -> None:
    hostvars = {**HOSTVARS, "decode-1": {"disagg_decode_port": value}}
    with pytest.raises(EndpointError, match=r"decode-1: sglang_worker_port is .*fix: set "
                                            r"disagg_decode_port"):
        compute_endpoints(GROUPS, hostvars)


def test_leaving_hosts_drop_out_of_the_instances_but_keep_their_own_entry() -> None:
    ep = compute_endpoints(GROUPS, HOSTVARS, {}, {}, ["prefill-2"])
    assert [p["host"] for p in ep["prefill"]] == ["prefill-1"]
    own = ep["workers"]["prefill-2"]["prefill"]
    assert own["leaving"] is True and own["url"] == "http://192.168.0.12:30001"
    assert ep["workers"]["prefill-1"]["prefill"]["leaving"] is False
    assert [d["host"] for d in ep["decode"]] == ["decode-1"]


def test_a_leaving_node_takes_its_whole_multinode_instance_out() -> None:
    groups = {"proxy": ["p"], "prefill": ["pf"], "decode": ["d1", "d2", "d3", "d4"]}
    hostvars = {h: {"ansible_host": f"10.1.0.{i}"} for i, h in enumerate(["p", "pf", "d1", "d2",
                                                                          "d3", "d4"])}
    ep = compute_endpoints(groups, hostvars, {}, {"decode": {"nnodes": 2}}, ["d4"])
    assert [d["host"] for d in ep["decode"]] == ["d1"]
