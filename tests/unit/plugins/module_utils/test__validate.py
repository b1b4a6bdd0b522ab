"""Controller-side inventory checks (module_utils/_validate.py): every problem names the host or
variable, the bad value and the fix; good settings give nothing."""

from __future__ import annotations

from ansible_collections.inferops.disagg.plugins.module_utils import _validate
from ansible_collections.inferops.disagg.plugins.module_utils._sglang_flags import (
    LAUNCH_SERVER_FLAGS,
)
from ansible_collections.inferops.disagg.plugins.module_utils._validate import HostView

PORTS = {"disagg_router_port": 30000, "disagg_router_prometheus_port": 29000,
         "disagg_prefill_port": 30001, "disagg_decode_port": 30002,
         "disagg_bootstrap_port": 8998, "disagg_dist_init_port": 5757,
         "disagg_etcd_client_port": 2379, "disagg_etcd_peer_port": 2380}


def view(name: str, groups: tuple[str, ...], address: str, **ports: object) -> HostView:
    return HostView(name, groups, address, {**PORTS, **ports})


def test_good_settings_give_no_problem() -> None:
    hosts = [view("proxy-1", ("proxy",), "10.0.0.1"), view("prefill-1", ("prefill",), "10.0.0.2"),
             view("decode-1", ("decode",), "10.0.0.3")]
    assert _validate.address_clashes(hosts) == []
    assert _validate.port_problems(hosts, "proxy-1", {"prefill": True, "decode": True}) == []
    assert _validate.count_problems({"disagg_xp": 2, "disagg_yd": None}) == []
    assert _validate.transfer_backend_problems("mooncake") == []
    assert _validate.etcd_host_problems("etcd", "proxy-1", ["proxy-1", "prefill-1"]) == []
    assert _validate.etcd_host_problems("p2p", "nowhere", ["proxy-1"]) == []
    assert _validate.name_problems("pd") == _validate.name_problems("my-pd.v2_1") == []


def test_two_hosts_with_one_address() -> None:
    problems = _validate.address_clashes([view("prefill-1", ("prefill",), "10.0.0.2"),
                                          view("decode-1", ("decode",), "10.0.0.2")])
    assert len(problems) == 1
    assert problems[0].startswith("hosts prefill-1, decode-1 all have the address 10.0.0.2")
    assert "Fix: give each host its own ansible_host" in problems[0]


def test_port_collisions_on_one_host_only() -> None:
    colocated = view("node-1", ("prefill", "decode"), "10.0.0.2", disagg_decode_port=30001)
    alone = view("decode-2", ("decode",), "10.0.0.3", disagg_decode_port=30001)
    problems = _validate.port_problems([colocated, alone])
    assert problems == [
        "node-1: disagg_decode_port and disagg_prefill_port are both 30001, and node-1 runs "
        "both. Fix: give one of them another port"]


def test_hosts_on_one_loopback_address_are_one_machine() -> None:
    one = view("prefill-1", ("prefill",), "127.0.0.1", disagg_prefill_port=31001)
    two = view("prefill-2", ("prefill",), "127.0.0.1", disagg_prefill_port=31001,
               disagg_bootstrap_port=8999)
    apart = view("prefill-3", ("prefill",), "127.0.0.1", disagg_prefill_port=31003,
                 disagg_bootstrap_port=9000)
    assert _validate.address_clashes([one, two, apart]) == []
    assert _validate.port_problems([one, two, apart]) == [
        "prefill-2: disagg_prefill_port and disagg_prefill_port are both 31001, and prefill-1 "
        "and prefill-2 share the address 127.0.0.1. Fix: give one of them another port"]
    assert _validate.port_problems([one, apart]) == []


def test_etcd_and_dist_init_ports_count_where_they_run() -> None:
    proxy = view("proxy-1", ("proxy",), "10.0.0.1", disagg_etcd_client_port=30000)
    assert _validate.port_problems([proxy]) == []
    assert "disagg_etcd_client_port and disagg_router_port are both 30000" in \
        _validate.port_problems([proxy], etcd_host="proxy-1")[0]
    prefill = view("prefill-1", ("prefill",), "10.0.0.2", disagg_dist_init_port=8998)
    assert _validate.port_problems([prefill]) == []
    assert "disagg_dist_init_port and disagg_bootstrap_port are both 8998" in \
        _validate.port_problems([prefill], multinode={"prefill": True})[0]


def test_ports_outside_the_range() -> None:
    problems = _validate.port_problems([view("proxy-1", ("proxy",), "a", disagg_router_port=0),
                                        view("proxy-2", ("proxy",), "b", disagg_router_port=0),
                                        view("prefill-1", ("prefill",), "c",
                                             disagg_prefill_port="70000")])
    assert problems == [
        "disagg_router_port: 0 is not a port (an integer 1-65535) on proxy-1. Fix: set "
        "disagg_router_port to a free port number",
        "disagg_prefill_port: '70000' is not a port (an integer 1-65535) on prefill-1. Fix: set "
        "disagg_prefill_port to a free port number"]
    # not an integer at all: type_problems reports it, once
    assert _validate.port_problems([view("p", ("proxy",), "a", disagg_router_port="http")]) == []


def test_counts_must_be_positive_integers() -> None:
    problems = _validate.count_problems({"disagg_xp": 0, "disagg_yd": "two"})
    assert problems[0].startswith("disagg_xp must be a positive integer (or null")
    assert "got 'two'" in problems[1]
    assert _validate.count_problems({"disagg_xp": True}) != []


def test_backend_etcd_host_and_name() -> None:
    assert "disagg_transfer_backend 'nixl' is not supported" in \
        _validate.transfer_backend_problems("nixl")[0]
    problem = _validate.etcd_host_problems("etcd", "proxy-9", ["proxy-1", "decode-1"])[0]
    assert problem.startswith("disagg_etcd_host 'proxy-9' is not a host of this inventory "
                              "(it has decode-1, proxy-1)")
    for bad in ("my pd", "-pd", "", "x" * 41, None, "pd/1"):
        assert _validate.name_problems(bad), bad


def test_extra_args_are_checked_against_sglang_0_5_2() -> None:
    args = {"sglang_worker_extra_args (all 3 worker hosts)": ["--tp-sise", "2", "--enable-metrics",
                                                              "--mem-fraction-static=0.8"],
            "prefill.extra_args (model profile)": ["--rehearsal-kv-pool-mb", "64"],
            "router_extra_args": "--x"}
    problems = _validate.extra_args_problems(args, LAUNCH_SERVER_FLAGS)
    assert problems[0] == (
        "sglang_worker_extra_args (all 3 worker hosts): --tp-sise is not a flag of SGLang "
        "0.5.2's launch_server. Fix: did you mean --tp-size? remove it, or check `python -m "
        "sglang.launch_server --help` of the image's SGLang")
    assert problems[1].startswith("prefill.extra_args (model profile): --rehearsal-kv-pool-mb")
    assert problems[2].startswith("router_extra_args must be a list of command-line words")
    assert _validate.extra_args_problems(
        {"x": ["--rehearsal-kv-pool-mb", "64"]},
        LAUNCH_SERVER_FLAGS | {"--rehearsal-kv-pool-mb"}) == []


def test_types_follow_the_argument_specs_and_group_hosts() -> None:
    specs = {"disagg_prefill_port": {"type": "int"}, "preflight_mode": {
        "type": "str", "choices": ["enforce", "warn"]}, "disagg_allow_colocation": {"type": "bool"}}
    values = {h: {"disagg_prefill_port": "abc", "preflight_mode": "warn",
                  "disagg_allow_colocation": "yes", "unknown_var": 1}
              for h in ("a", "b")}
    values["b"]["preflight_mode"] = "strict"
    problems = _validate.type_problems(values, specs)
    assert problems == [
        "disagg_prefill_port must be an integer, got 'abc' (str) on all 2 hosts. Fix: correct "
        "disagg_prefill_port in the inventory (group_vars, host_vars or -e)",
        "preflight_mode must be a string (one of enforce, warn), got 'strict' (str) on b. Fix: "
        "correct preflight_mode in the inventory (group_vars, host_vars or -e)"]
    # 'yes' converts to a bool as Ansible's own argument spec check does: accepted
    assert _validate.type_problems({"a": {"disagg_prefill_port": "30001"}}, specs) == []


def test_unknown_names_are_warnings_with_a_suggestion() -> None:
    declared = {"disagg_xp", "disagg_yd", "sglang_worker_env"}
    warnings = _validate.unknown_names({"disagg_xpp", "sglang_worker_envv", "disagg_xp",
                                        "ansible_host", "zzz_disagg_thing", "disagg_zzzz"},
                                       declared)
    assert warnings == [
        "disagg_xpp is set in the inventory but no role of inferops.disagg uses it, so it has no "
        "effect; did you mean disagg_xp?",
        "disagg_zzzz is set in the inventory but no role of inferops.disagg uses it, so it has "
        "no effect",
        "sglang_worker_envv is set in the inventory but no role of inferops.disagg uses it, so it "
        "has no effect; did you mean sglang_worker_env?"]
