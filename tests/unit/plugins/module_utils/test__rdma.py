"""Tables for the RDMA parsers: sysfs trees and ibv_devinfo -v text of several versions."""

from __future__ import annotations

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _rdma
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError

from ._preflight_helpers import DERIVED, RECORDED, TREES, text

NAMES = ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9"]


@pytest.mark.parametrize(("mtu", "expected"), [
    (1500, 1024), (9000, 4096), (4200, 4096), (4192, 4096), (4191, 2048), (2200, 2048),
    (1400, 1024), (1000, 512), (300, None), (None, None),
])
def test_roce_active_mtu(mtu, expected):
    assert _rdma.roce_active_mtu(mtu) == expected


@pytest.mark.parametrize(("gid", "ipv4", "link_local"), [
    ("0000:0000:0000:0000:0000:ffff:0a0e:0148", "10.14.1.72", False),
    ("::ffff:200.0.209.6", "200.0.209.6", False),
    ("fe80:0000:0000:0000:0ac0:ebff:feda:1cfb", None, True),
    ("fd93:16d3:59b6:0006:1270:fdff:fe27:2511", None, False),
])
def test_gid_info(gid, ipv4, link_local):
    info = _rdma.gid_info(gid)
    assert (info["ipv4"], info["link_local"], info["valid"]) == (ipv4, link_local, True)


def test_sysfs_fit():
    devices = _rdma.sysfs_devices(str(TREES / "fit"))
    assert [d["name"] for d in devices] == NAMES
    ports = [d["ports"][0] for d in devices]
    assert {p["state"] for p in ports} == {"ACTIVE"}
    assert {p["active_mtu"] for p in ports} == {4096}
    assert {p["roce_v2_ipv4_gid_index"] for p in ports} == {3}
    assert ports[0]["roce_v2_ipv4_gid"] == "::ffff:10.14.1.72"
    assert ports[0]["netdev"] == "ens12np0" and ports[0]["rate_gbps"] == 400.0
    assert [d["numa_node"] for d in devices] == [0, 0, 0, 0, 1, 1, 1, 1]
    summary = _rdma.summarize(devices)
    assert summary["mc_gid_index"] == 3 and summary["active_port_count"] == 8
    assert _rdma.uverbs_nodes(str(TREES / "fit")) == [f"uverbs{i}" for i in range(8)]


def test_sysfs_unfit_faults():
    by_name = {d["name"]: d["ports"][0] for d in _rdma.sysfs_devices(str(TREES / "unfit"))}
    assert (by_name["mlx5_3"]["state"], by_name["mlx5_3"]["phys_state"]) == ("DOWN", "Disabled")
    assert (by_name["mlx5_5"]["netdev_mtu"], by_name["mlx5_5"]["active_mtu"]) == (1500, 1024)
    assert by_name["mlx5_6"]["roce_v2_ipv4_gid_index"] is None
    assert {g["ipv4"] for g in by_name["mlx5_6"]["gids"]} == {None}


def test_sysfs_absent(tmp_path):
    assert _rdma.sysfs_devices(str(tmp_path)) is None


def test_sysfs_bad_gid(tmp_path):
    port = tmp_path / "sys/class/infiniband/mlx5_0/ports/1"
    (port / "gids").mkdir(parents=True)
    (port / "gids" / "0").write_text("garbage\n")
    with pytest.raises(ProbeError, match=r"gids/0: not a GID.*check rdma.facts"):
        _rdma.sysfs_devices(str(tmp_path))


def test_sysfs_bad_mtu(tmp_path):
    port = tmp_path / "sys/class/infiniband/mlx5_0/ports/1"
    (port / "gid_attrs/ndevs").mkdir(parents=True)
    (port / "gids").mkdir(parents=True)
    (port / "gids/3").write_text("0000:0000:0000:0000:0000:ffff:0a0e:0148\n")
    (port / "gid_attrs/ndevs/3").write_text("ens12np0\n")
    (port / "link_layer").write_text("Ethernet\n")
    (tmp_path / "sys/class/net/ens12np0").mkdir(parents=True)
    (tmp_path / "sys/class/net/ens12np0/mtu").write_text("jumbo\n")
    with pytest.raises(ProbeError, match=r"/sys/class/net/ens12np0/mtu: expected a number"):
        _rdma.sysfs_devices(str(tmp_path))


IBV_CASES = [
    # rdma-core >= 28 text with GID types, derived 8x ConnectX-7 (fit)
    (DERIVED / "ibv_devinfo/8xCX7-fit.txt",
     {"count": 8, "state": "ACTIVE", "active_mtu": 4096, "link_layer": "Ethernet", "gid": 3,
      "rate_gbps": 400.0}),
    # Azure HBv2 ConnectX-5 VF, non-verbose (Azure/azhpc-images#44): no GIDs, MTU 1024
    (RECORDED / "ibv_devinfo/azhpc-images-44-cx5-vf.txt",
     {"count": 1, "state": "ACTIVE", "active_mtu": 1024, "link_layer": "Ethernet", "gid": None}),
    # mlx4 VF inside a container, "Failed to open device" noise (hustcat/k8s-rdma-device-plugin#8)
    (RECORDED / "ibv_devinfo/k8s-rdma-device-plugin-8-mlx4-vf.txt",
     {"count": 1, "state": "ACTIVE", "active_mtu": 4096, "link_layer": "InfiniBand", "gid": None}),
    # MLNX_OFED ibv_devinfo -v without GID types (Mellanox/k8s-rdma-shared-dev-plugin#164)
    (RECORDED / "ibv_devinfo/k8s-rdma-shared-dev-plugin-164-cx4lx-excerpt.txt",
     {"count": 1, "state": "ACTIVE", "active_mtu": 4096, "link_layer": "Ethernet", "gid": None,
      "rate_gbps": 25.0}),
    # SoftRoCE rxe0 without a link_layer line (SoftRoCE/rxe-dev#46)
    (RECORDED / "ibv_devinfo/softroce-rxe-dev-46-rxe0.txt",
     {"count": 1, "state": "ACTIVE", "active_mtu": 1024, "link_layer": None, "gid": None}),
]


@pytest.mark.parametrize(("path", "expected"), IBV_CASES, ids=lambda p: getattr(p, "name", ""))
def test_ibv_devinfo(path, expected):
    devices = _rdma.parse_ibv_devinfo(text(path))
    assert len(devices) == expected["count"]
    port = devices[0]["ports"][0]
    assert port["state"] == expected["state"]
    assert port["active_mtu"] == expected["active_mtu"]
    assert port["link_layer"] == expected["link_layer"]
    assert port["roce_v2_ipv4_gid_index"] == expected["gid"]
    if "rate_gbps" in expected:
        assert port["rate_gbps"] == expected["rate_gbps"]


def test_ibv_devinfo_untyped_gids_are_kept():
    devices = _rdma.parse_ibv_devinfo(
        text(RECORDED / "ibv_devinfo/k8s-rdma-shared-dev-plugin-164-cx4lx-excerpt.txt"))
    gids = devices[0]["ports"][0]["gids"]
    assert [(g["index"], g["ipv4"], g["type"]) for g in gids] == [
        (14, "192.168.6.6", None), (15, "192.168.6.6", None)]


def test_ibv_devinfo_real_gid_types():
    """GID lines as rdma-core prints them (NVIDIA/nccl#769), wrapped in a device/port header."""
    doc = "hca_id:\tmlx5_bond_0\n\t\tport:\t1\n" + text(
        RECORDED / "ibv_devinfo/nccl-769-mlx5_bond_0-excerpt.txt")
    port = _rdma.parse_ibv_devinfo(doc)[0]["ports"][0]
    assert [g["type"] for g in port["gids"]] == ["IB/RoCE v1", "RoCE v2", "IB/RoCE v1", "RoCE v2"]
    assert (port["roce_v2_ipv4_gid_index"], port["roce_v2_ipv4"]) == (3, "200.0.209.6")
    assert port["phys_state"] == "LINK_UP"


def test_ibv_devinfo_unfit():
    ports = {d["name"]: d["ports"][0] for d in _rdma.parse_ibv_devinfo(
        text(DERIVED / "ibv_devinfo/8xCX7-unfit.txt"))}
    assert ports["mlx5_3"]["state"] == "DOWN"
    assert ports["mlx5_5"]["active_mtu"] == 1024
    assert ports["mlx5_6"]["roce_v2_ipv4_gid_index"] is None


@pytest.mark.parametrize(("doc", "problem"), [
    ("", "printed nothing"),
    ("No IB devices found\n", "no hca_id found"),
    ("transport: InfiniBand (0)\nhca_id: x\n", "expected 'hca_id:'"),
])
def test_ibv_devinfo_malformed(doc, problem):
    with pytest.raises(ProbeError) as err:
        _rdma.parse_ibv_devinfo(doc)
    assert str(err.value).startswith("ibv_devinfo -v: ") and problem in str(err.value)
    assert "check rdma.facts" in str(err.value)


def test_ibv_devinfo_skips_provider_warnings():
    doc = ("libibverbs: Warning: couldn't load driver 'libmlx4-rdmav34.so': cannot open\n"
           + text(RECORDED / "ibv_devinfo/azhpc-images-44-cx5-vf.txt"))
    assert _rdma.parse_ibv_devinfo(doc)[0]["name"] == "rdmaP23800p0s2"


def _cut_before_port(path):
    """A recorded ibv_devinfo output cut where its port block starts (derived in the test)."""
    lines = text(path).splitlines(keepends=True)
    return "".join(lines[:next(i for i, line in enumerate(lines)
                               if line.strip().startswith("port:"))])


@pytest.mark.parametrize("name", ["azhpc-images-44-cx5-vf.txt",
                                  "k8s-rdma-device-plugin-8-mlx4-vf.txt"])
def test_ibv_devinfo_truncated_device_is_incomplete_not_zero_ports(name):
    devices = _rdma.parse_ibv_devinfo(_cut_before_port(RECORDED / "ibv_devinfo" / name))
    assert devices[0]["ports"] == []
    assert devices[0]["incomplete"] == "no port lines after its hca_id (output cut?)"
    assert _rdma.summarize(devices)["incomplete_devices"] == [
        f"{devices[0]['name']}: no port lines after its hca_id (output cut?)"]


def test_ibv_devinfo_cut_inside_a_port_block():
    lines = text(RECORDED / "ibv_devinfo" / "azhpc-images-44-cx5-vf.txt").splitlines()
    cut = "\n".join(lines[:next(i for i, x in enumerate(lines)
                                if x.strip().startswith("port:")) + 1])
    device = _rdma.parse_ibv_devinfo(cut)[0]
    assert device["incomplete"] == "port 1 without a state line (output cut?)"


@pytest.mark.parametrize("name", ["azhpc-images-44-cx5-vf.txt", "softroce-rxe-dev-46-rxe0.txt",
                                  "k8s-rdma-device-plugin-8-mlx4-vf.txt"])
def test_ibv_devinfo_whole_recordings_are_complete(name):
    devices = _rdma.parse_ibv_devinfo(text(RECORDED / "ibv_devinfo" / name))
    assert [d["incomplete"] for d in devices] == [None] * len(devices)
