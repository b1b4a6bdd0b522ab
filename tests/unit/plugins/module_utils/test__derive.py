"""Launch settings derived from a host's facts (module_utils/_derive.py, filter derive.py).

The RDMA facts are what ``inferops.disagg.rdma_facts`` returns (its ``gather()``) on the recorded
8x MI300X + 8x ConnectX-7 trees of tests/fixtures/preflight (see SOURCES.md there): ``fit`` has
mlx5_0..6 and mlx5_9 ACTIVE RoCE with the RoCE v2 IPv4 GID at index 3; ``unfit`` has mlx5_3 DOWN
and mlx5_6 with IPv6 GIDs only. mlx5_1's netdev is ens11np0.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.filter import derive as derive_filter
from ansible_collections.inferops.disagg.plugins.module_utils import _derive, _rdma
from ansible_collections.inferops.disagg.plugins.modules import rdma_facts

from ._preflight_helpers import RECORDED, TREES, FakeModule

FIT_ALL = ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9"]
#: The collection defaults (roles/_common/defaults/main.yml), without the disagg_ prefix.
DEFAULTS = {
    "kv_transport": "rdma", "ib_devices": "", "ib_device_exclude": [],
    "exclude_default_route_nic": True, "link_layer": "Ethernet", "mc_gid_index": None,
    "socket_ifname": "",
}


def facts(tree: Path | str) -> dict:
    """ansible_facts.rdma as the rdma_facts module gathers it from a root tree."""
    return rdma_facts.gather(FakeModule(root=str(tree), ibv_devinfo_path=None))


def settings(**changes: object) -> dict:
    return {**DEFAULTS, **changes}


def run(tree: str | Path = "fit", default_ifname: str | None = "eno1", **changes: object) -> dict:
    path = TREES / tree if isinstance(tree, str) else tree
    return _derive.derive("prefill-1", settings(**changes), facts(path), default_ifname)


def test_fit_host_every_device_gid_3_socket_from_default_route():
    out = run()
    assert out["errors"] == []
    assert out["ib_devices"] == FIT_ALL
    assert out["ib_device_arg"] == ",".join(FIT_ALL)
    assert out["ib_devices_source"].startswith("derived: ansible_facts.rdma")
    assert out["mc_gid_index"] == 3 and out["mc_gid_index_source"].startswith("derived")
    assert out["socket_ifname"] == "eno1"
    assert out["socket_ifname_source"] == "derived: ansible_default_ipv4.interface"
    assert out["env"] == {"MC_GID_INDEX": "3", "NCCL_SOCKET_IFNAME": "eno1",
                          "GLOO_SOCKET_IFNAME": "eno1"}


def test_seed_front_end_nics_excluded():
    # The seed skips mlx5_1 and mlx5_6 (front-end NICs) and lists the other CX-7s in order.
    out = run(ib_device_exclude=["mlx5_1", "mlx5_6"])
    assert out["ib_devices"] == ["mlx5_0", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_9"]
    assert {d["name"]: d["reason"] for d in out["ib_devices_left_out"]} == {
        "mlx5_1": "in disagg_ib_device_exclude", "mlx5_6": "in disagg_ib_device_exclude"}
    assert "minus disagg_ib_device_exclude" in out["ib_devices_source"]
    assert out["errors"] == []


def test_default_route_nic_left_out_only_when_asked():
    out = run(default_ifname="ens11np0")  # mlx5_1's netdev carries the default route
    assert "mlx5_1" not in out["ib_devices"] and len(out["ib_devices"]) == 7
    assert out["ib_devices_left_out"] == [
        {"name": "mlx5_1", "reason": "carries the default route (ens11np0)"}]
    assert out["socket_ifname"] == "ens11np0"  # the socket interface is that netdev, not an HCA
    kept = run(default_ifname="ens11np0", exclude_default_route_nic=False)
    assert kept["ib_devices"] == FIT_ALL


def test_unfit_down_port_and_ipv6_only_gids():
    out = run("unfit", ib_device_exclude=[])
    assert "mlx5_3" not in out["ib_devices"]
    assert {"name": "mlx5_3", "reason": "port 1 DOWN"} in out["ib_devices_left_out"]
    # mlx5_6 is ACTIVE but has no RoCE v2 IPv4 GID: MC_GID_INDEX cannot be derived.
    assert out["mc_gid_index"] is None and "MC_GID_INDEX" not in out["env"]
    [error] = out["errors"]
    assert error.startswith("prefill-1: launch.mc_gid_index: cannot derive MC_GID_INDEX")
    assert "mlx5_6 port 1" in error and "disagg_mc_gid_index" in error


def test_unfit_without_the_ipv6_nic_derives():
    out = run("unfit", ib_device_exclude=["mlx5_6"])
    assert out["errors"] == []
    assert out["ib_devices"] == ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_4", "mlx5_5", "mlx5_9"]
    assert out["mc_gid_index"] == 3


def test_explicit_gid_index_wins_over_a_missing_one():
    out = run("unfit", mc_gid_index="5")
    assert out["errors"] == [] and out["mc_gid_index"] == 5
    assert out["mc_gid_index_source"] == "set by disagg_mc_gid_index"
    assert out["env"]["MC_GID_INDEX"] == "5"


def test_wrong_link_layer_leaves_no_device():
    out = run(link_layer="InfiniBand")
    assert out["ib_devices"] == [] and out["ib_device_arg"] == ""
    [error] = out["errors"]
    assert error.startswith("prefill-1: launch.ib_devices: no RDMA device left for Mooncake")
    assert "mlx5_0: port 1 Ethernet, not InfiniBand" in error
    assert "disagg_ib_link_layer" in error and "disagg_ib_devices" in error


def test_one_device_of_another_link_layer(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(TREES / "fit", tree, symlinks=True)
    (tree / "sys/class/infiniband/mlx5_4/ports/1/link_layer").write_text("InfiniBand\n")
    out = run(tree)
    assert "mlx5_4" not in out["ib_devices"] and len(out["ib_devices"]) == 7
    assert {"name": "mlx5_4", "reason": "port 1 InfiniBand, not Ethernet"} in \
        out["ib_devices_left_out"]


def test_everything_excluded_is_a_clear_error():
    out = run(ib_device_exclude=FIT_ALL)
    [error] = out["errors"]
    assert "mlx5_9: in disagg_ib_device_exclude" in error
    assert "expected at least one device with an ACTIVE Ethernet port" in error


def test_infiniband_host_needs_no_gid_index():
    text = (RECORDED / "ibv_devinfo/k8s-rdma-device-plugin-8-mlx4-vf.txt").read_text()
    devices = _rdma.parse_ibv_devinfo(text)
    rdma = {"source": "ibv_devinfo", "devices": devices, **_rdma.summarize(devices)}
    out = _derive.derive("decode-1", settings(link_layer="InfiniBand"), rdma, "ib0")
    assert out["errors"] == []
    assert out["ib_devices"] == sorted((d["name"] for d in devices), key=_derive.natural_key)
    assert out["mc_gid_index"] is None and "MC_GID_INDEX" not in out["env"]
    assert "InfiniBand" in out["mc_gid_index_source"]


def test_explicit_devices_win_and_are_checked():
    out = run(ib_devices="mlx5_9, mlx5_0")
    assert out["ib_devices"] == ["mlx5_9", "mlx5_0"] and out["ib_device_arg"] == "mlx5_9,mlx5_0"
    assert out["ib_devices_source"] == "set by disagg_ib_devices"
    assert out["mc_gid_index"] == 3
    listed = run(ib_devices=["mlx5_2"])
    assert listed["ib_device_arg"] == "mlx5_2" and listed["errors"] == []
    wrong = run(ib_devices="mlx5_7")
    [error] = wrong["errors"]
    assert "disagg_ib_devices names mlx5_7, which this host does not have" in error


def test_no_rdma_devices_visible():
    out = _derive.derive("decode-1", settings(), {"source": "none", "devices": [],
                                                  "fallbacks": ["/sys/class/infiniband: absent"]},
                         "eth0")
    [error] = out["errors"]
    assert error.startswith("decode-1: launch.ib_devices: cannot derive the RDMA devices")
    assert "/sys/class/infiniband: absent" in error and "disagg_kv_transport: tcp" in error
    failed = _derive.derive("decode-1", settings(), None, "eth0", rdma_error="sysfs: EACCES")
    assert "sysfs: EACCES" in failed["errors"][0]


def test_tcp_derives_nothing_rdma_but_the_socket_interface():
    out = _derive.derive("prefill-1", settings(kv_transport="tcp", ib_devices="mlx5_0",
                                               mc_gid_index=3), None, "eth0")
    assert out["errors"] == []
    assert out["ib_devices"] == [] and out["ib_device_arg"] == "" and out["mc_gid_index"] is None
    assert out["env"] == {"NCCL_SOCKET_IFNAME": "eth0", "GLOO_SOCKET_IFNAME": "eth0"}


def test_socket_interface_never_an_hca():
    # The seed's bug: HCA names appended to NCCL_SOCKET_IFNAME.
    out = run(socket_ifname="eno1,mlx5_0,mlx5_2")
    assert [e.split(":")[1].strip() for e in out["errors"]] == ["launch.socket_ifname"] * 2
    assert "names the RDMA device mlx5_0" in out["errors"][0]
    tcp = _derive.derive("p", settings(kv_transport="tcp", socket_ifname="mlx5_1"), None, None)
    assert "names the RDMA device mlx5_1" in tcp["errors"][0]
    explicit = run(socket_ifname="bond0", default_ifname=None)
    assert explicit["errors"] == [] and explicit["socket_ifname_source"] == \
        "set by disagg_socket_ifname"


def test_no_default_route_and_no_explicit_interface():
    out = run(default_ifname=None)
    assert out["ib_devices"] == FIT_ALL  # nothing to leave out for the default route
    assert "no default route" in out["ib_devices_source"]
    [error] = out["errors"]
    assert "ansible_default_ipv4.interface is undefined" in error
    assert "disagg_socket_ifname" in error


@pytest.mark.parametrize(("change", "check"), [
    ({"kv_transport": "roce"}, "launch.kv_transport"),
    ({"link_layer": "ethernet"}, "launch.link_layer"),
    ({"mc_gid_index": "three"}, "launch.mc_gid_index"),
    ({"mc_gid_index": -1}, "launch.mc_gid_index"),
])
def test_bad_settings(change, check):
    out = run(**change)
    assert out["errors"] and out["errors"][0].split(": ")[1] == check


def test_natural_order():
    assert sorted(["mlx5_10", "mlx5_2", "mlx5_1"], key=_derive.natural_key) == \
        ["mlx5_1", "mlx5_2", "mlx5_10"]


def _worker(host: str, mode: str, out: dict) -> dict:
    """A host's derived settings as the role keeps them: with its name and worker modes."""
    return {**out, "host": host, "modes": [mode]}


def test_mismatches_within_a_role():
    full = run()
    fewer = run("unfit", ib_device_exclude=["mlx5_6"])  # 6 devices
    other_gid = run(mc_gid_index=1)
    found = _derive.mismatches([
        _worker("prefill-1", "prefill", full), _worker("prefill-2", "prefill", fewer),
        _worker("decode-1", "decode", full), _worker("decode-2", "decode", other_gid),
    ])
    assert len(found) == 2
    assert found[0].startswith("launch.ib_devices: the prefill hosts would use different numbers")
    assert "prefill-1 = 8 (mlx5_0," in found[0] and "prefill-2 = 6 (" in found[0]
    assert "group_vars/prefill" in found[0]
    assert "decode-1 = 3; decode-2 = 1" in found[1] and "disagg_mc_gid_index" in found[1]


def test_no_mismatch_across_roles_or_in_tcp():
    full, fewer = run(), run("unfit", ib_device_exclude=["mlx5_6"])
    assert _derive.mismatches([_worker("p", "prefill", full), _worker("d", "decode", fewer)]) == []
    tcp = _derive.derive("x", settings(kv_transport="tcp"), None, "eth0")
    assert _derive.mismatches([_worker("p1", "prefill", tcp), _worker("p2", "prefill", tcp)]) == []
    mixed = _derive.mismatches([_worker("p1", "prefill", full), _worker("d1", "decode", tcp)])
    assert len(mixed) == 1 and mixed[0].startswith("launch.kv_transport")
    # A host whose own derivation failed is reported by its errors, not compared.
    broken = run(link_layer="InfiniBand")
    assert _derive.mismatches([_worker("p1", "prefill", full),
                               _worker("p2", "prefill", broken)]) == []


def test_summary_line_names_values_and_sources():
    line = _derive.summary_line(run(ib_device_exclude=["mlx5_1"], default_ifname="eno1"))
    assert "KV transport rdma" in line
    assert "--disaggregation-ib-device mlx5_0,mlx5_2," in line
    assert "[left out: mlx5_1 (in disagg_ib_device_exclude)]" in line
    assert "MC_GID_INDEX 3 (derived: ansible_facts.rdma" in line
    assert line.endswith("NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME eno1 "
                         "(derived: ansible_default_ipv4.interface)")
    tcp = _derive.summary_line(_derive.derive("x", settings(kv_transport="tcp"), None, "eth0"))
    assert "disagg_kv_transport is tcp" in tcp and "MC_GID_INDEX" in tcp


def test_filters():
    filters = derive_filter.FilterModule().filters()
    out = filters["launch_settings"](facts(TREES / "fit"), "prefill-1", settings(), "eno1")
    assert out["mc_gid_index"] == 3
    assert filters["launch_settings_line"](out).startswith("KV transport rdma")
    assert filters["launch_settings_mismatches"]([_worker("p", "prefill", out)]) == []
    with pytest.raises(AnsibleFilterError, match="ansible_facts.rdma"):
        filters["launch_settings"]("nope", "h", settings())
    with pytest.raises(AnsibleFilterError, match="missing or bad"):
        filters["launch_settings_mismatches"]([{"host": "p"}])


def test_colocated_host_counts_in_both_roles():
    full, fewer = run(), run("unfit", ib_device_exclude=["mlx5_6"])
    both = {**full, "host": "pd-1", "modes": ["prefill", "decode"]}
    found = _derive.mismatches([both, _worker("d2", "decode", fewer)])
    assert len(found) == 1 and "the decode hosts" in found[0] and "pd-1 = 8" in found[0]
