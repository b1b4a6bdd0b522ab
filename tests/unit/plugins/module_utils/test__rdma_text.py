"""The RDMA text parsers (ibstat, show_gids, rdma link show [-j]) on the outputs of
tests/fixtures/preflight/constructed/rdma and recorded/rdma (SOURCES.md)."""

from __future__ import annotations

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _rdma, _rdma_text
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError

from ._preflight_helpers import RECORDED, text

CONSTRUCTED = RECORDED.parent / "constructed" / "rdma"


def _read(name: str) -> str:
    return text(CONSTRUCTED / name)


def test_ibstat():
    devices = _rdma_text.parse_ibstat(_read("ibstat-2xCX7.txt"))
    assert [d["name"] for d in devices] == ["mlx5_0", "mlx5_1"]
    port = devices[0]["ports"][0]
    assert (port["state"], port["phys_state"], port["link_layer"], port["rate_gbps"]) == (
        "ACTIVE", "LinkUp", "Ethernet", 400.0)
    assert devices[0]["fw_ver"] == "28.39.1002" and devices[0]["incomplete"] is None


def test_ibstat_cut_after_the_device_header_is_incomplete():
    cut = "".join(_read("ibstat-2xCX7.txt").splitlines(keepends=True)[:7])
    device = _rdma_text.parse_ibstat(cut)[0]
    assert (device["ports"], device["incomplete"]) == ([], "no port lines (output cut?)")


def test_show_gids():
    rows = _rdma_text.parse_show_gids(_read("show_gids-2xCX7.txt"))
    assert len(rows) == 8
    assert rows[3] == {"gid": "::ffff:10.14.1.72", "ipv4": "10.14.1.72", "link_local": False,
                       "dev": "mlx5_0", "port": 1, "index": 3, "type": "RoCE v2",
                       "ndev": "ens12np0"}
    assert rows[0]["type"] == "IB/RoCE v1" and rows[0]["link_local"] is True


def test_show_gids_cut_is_refused():
    cut = "\n".join(_read("show_gids-2xCX7.txt").splitlines()[:6])
    with pytest.raises(ProbeError, match=r"^show_gids: 4 GID rows but no n_gids_found= line"):
        _rdma_text.parse_show_gids(cut)


@pytest.mark.parametrize("name", ["rdma-link-show-2xCX7.txt", "rdma-link-show-j-2xCX7.json"])
def test_rdma_link_text_and_json(name):
    links = _rdma_text.parse_rdma_link(_read(name))
    assert links == [
        {"dev": "mlx5_0", "port": 1, "state": "ACTIVE", "phys_state": "LINK_UP",
         "netdev": "ens12np0"},
        {"dev": "mlx5_1", "port": 1, "state": "ACTIVE", "phys_state": "LINK_UP",
         "netdev": "ens11np0"}]


def test_rdma_link_without_netlink_is_refused_quoting_it():
    """Recorded on this machine: iproute2 6.1.0 `rdma link show` in a container."""
    doc = text(RECORDED / "rdma" / "link-show-no-netlink-iproute2-6.1.0.txt")
    with pytest.raises(ProbeError) as err:
        _rdma_text.parse_rdma_link(doc)
    assert "'Failed to open NETLINK_RDMA socket'" in str(err.value)
    assert "(check rdma.facts)" in str(err.value)


@pytest.mark.parametrize(("parser", "doc", "problem"), [
    (_rdma_text.parse_ibstat, text(RECORDED / "ibv_devinfo" / "azhpc-images-44-cx5-vf.txt"),
     "it printed first: 'hca_id: rdmaP23800p0s2'"),
    (_rdma_text.parse_show_gids, _read("ibstat-2xCX7.txt"), "it printed first: \"CA 'mlx5_0'\""),
    (_rdma_text.parse_rdma_link, _read("ibstat-2xCX7.txt"), "not a 'link <dev>/<port> ...' line"),
    (_rdma_text.parse_rdma_link, '{"ifname": "mlx5_0"}', "expected a list"),
])
def test_other_outputs_are_refused(parser, doc, problem):
    with pytest.raises(ProbeError) as err:
        parser(doc)
    assert problem in str(err.value)


def test_devices_from_all_three_outputs():
    devices = _rdma_text.devices_from_outputs(_read("ibstat-2xCX7.txt"),
                                              _read("show_gids-2xCX7.txt"),
                                              _read("rdma-link-show-j-2xCX7.json"))
    ports = [d["ports"][0] for d in devices]
    assert [p["netdev"] for p in ports] == ["ens12np0", "ens11np0"]
    assert [p["roce_v2_ipv4_gid_index"] for p in ports] == [3, 3]
    assert all(p["gids_known"] for p in ports)
    summary = _rdma.summarize(devices)
    assert (summary["device_count"], summary["active_port_count"], summary["mc_gid_index"]) == (
        2, 2, 3)


def test_devices_from_ibstat_alone_do_not_know_their_gids():
    devices = _rdma_text.devices_from_outputs(ibstat=_read("ibstat-2xCX7.txt"))
    port = devices[0]["ports"][0]
    assert port["gids_known"] is False and port["roce_v2_ipv4_gid_index"] is None


def test_preflight_says_the_gid_table_is_unknown_rather_than_empty():
    from ansible_collections.inferops.disagg.plugins.module_utils import _preflight
    devices = _rdma_text.devices_from_outputs(ibstat=_read("ibstat-2xCX7.txt"))
    facts = {"source": "ibstat", "devices": devices, "uverbs": ["uverbs0", "uverbs1"],
             **_rdma.summarize(devices)}
    found = _preflight.evaluate_rdma("h1", {"ansible_facts": {"rdma": facts}},
                                     dict(_preflight.DEFAULTS, rdma_min_devices=2))
    assert [f["check"] for f in found] == ["rdma.roce_v2_gid"]
    assert found[0]["found"] == ("GID table unknown on mlx5_0/1, mlx5_1/1 (facts from ibstat, "
                                 "which has no GIDs)")


def _prefixes(name: str):
    lines = _read(name).splitlines(keepends=True)
    return ["".join(lines[:end]) for end in range(len(lines))]


def test_cut_ibstat_is_flagged_or_the_same():
    whole = _rdma_text.parse_ibstat(_read("ibstat-2xCX7.txt"))
    for cut in _prefixes("ibstat-2xCX7.txt"):
        try:
            devices = _rdma_text.parse_ibstat(cut)
        except ProbeError:
            continue
        for position, device in enumerate(devices):
            assert device["incomplete"] or device == whole[position], repr(cut[-60:])


@pytest.mark.parametrize("name", ["show_gids-2xCX7.txt", "rdma-link-show-2xCX7.txt",
                                  "rdma-link-show-j-2xCX7.json"])
def test_cut_gids_and_links_are_refused_or_a_prefix(name):
    parse = (_rdma_text.parse_show_gids if name.startswith("show_gids")
             else _rdma_text.parse_rdma_link)
    whole = parse(_read(name))
    for cut in _prefixes(name):
        try:
            got = parse(cut)
        except ProbeError:
            continue
        assert got == whole[:len(got)]
