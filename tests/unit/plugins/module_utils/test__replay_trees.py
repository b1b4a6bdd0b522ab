"""The replay trees of inventories/rehearsal-mi300x (tests/fixtures/preflight/build_trees.py).

``trees/replay-fit`` (committed) and its unfit variants (``--variant``, built here): their
sysfs, the ``amd-smi`` and ``ibv_devinfo -v`` replays agree with each other, the derivation
gives what the rehearsal deploy asserts on (default route eth0 = mlx5_1's netdev, mlx5_6
excluded), and each variant plants exactly its fault.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _amdgpu, _derive, _rdma

from ._preflight_helpers import FIXTURES, TREES

BUILD = FIXTURES / "build_trees.py"
#: The rehearsal-mi300x inventory's policy (group_vars/all/replay.yml) on the collection defaults.
SETTINGS = {
    "kv_transport": "rdma", "ib_devices": "", "ib_device_exclude": ["mlx5_6"],
    "exclude_default_route_nic": True, "link_layer": "Ethernet", "mc_gid_index": None,
    "socket_ifname": "",
}
EXPECTED_DEVICES = ["mlx5_0", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_9"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """replay-fit (committed) and the three unfit variants, built by build_trees.py."""
    out = {"replay-fit": TREES / "replay-fit"}
    base = tmp_path_factory.mktemp("replay")
    for name in ("replay-port-down", "replay-gid-index-5", "replay-7gpu"):
        subprocess.run([sys.executable, str(BUILD), "--variant", name, "--dest",
                        str(base / name)], check=True)
        out[name] = base / name
    return out


def _replayed(tree: Path, *argv: str) -> str:
    return subprocess.run([str(tree / argv[0]), *argv[1:]], capture_output=True, text=True,
                          check=True).stdout


def _summary(devices: list[dict]) -> list[tuple]:
    return [(d["name"], p["state"], p["link_layer"], p["roce_v2_ipv4_gid_index"],
             [g["gid"] for g in p["gids"] if g.get("ipv4")])
            for d in devices for p in d["ports"]]


@pytest.mark.parametrize("name", ["replay-fit", "replay-port-down", "replay-gid-index-5",
                                  "replay-7gpu"])
def test_replays_agree_with_sysfs(trees, name):
    tree = trees[name]
    sysfs = _rdma.sysfs_devices(str(tree))
    replayed = _rdma.parse_ibv_devinfo(_replayed(tree, "usr/bin/ibv_devinfo", "-v"))
    assert _summary(replayed) == _summary(sysfs)
    gpus = _amdgpu.parse_amd_smi_static(_replayed(tree, "opt/rocm/bin/amd-smi", "static",
                                                  "--json"))
    cards = _amdgpu.sysfs_gpus(str(tree))
    assert sorted(g["bdf"] for g in gpus) == sorted(g["bdf"] for g in cards["gpus"])


def test_ibv_devinfo_replays_only_what_was_recorded(trees):
    proc = subprocess.run([str(trees["replay-fit"] / "usr/bin/ibv_devinfo")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "only ibv_devinfo -v" in proc.stderr


def test_fit_derives_the_back_end_nics_gid_3_and_eth0(trees):
    out = _derive.derive("prefill-1", SETTINGS, {"devices": _rdma.sysfs_devices(
        str(trees["replay-fit"]))}, "eth0")
    assert out["errors"] == []
    assert out["ib_devices"] == EXPECTED_DEVICES
    assert {d["name"]: d["reason"] for d in out["ib_devices_left_out"]} == {
        "mlx5_1": "carries the default route (eth0)", "mlx5_6": "in disagg_ib_device_exclude"}
    assert out["env"] == {"MC_GID_INDEX": "3", "NCCL_SOCKET_IFNAME": "eth0",
                          "GLOO_SOCKET_IFNAME": "eth0"}


def test_variants_plant_one_fault_each(trees):
    def ports(name: str) -> dict[str, dict]:
        return {d["name"]: d["ports"][0] for d in _rdma.sysfs_devices(str(trees[name]))}

    fit, down, gid5 = ports("replay-fit"), ports("replay-port-down"), ports("replay-gid-index-5")
    assert [n for n, p in down.items() if p["state"] != "ACTIVE"] == ["mlx5_3"]
    assert {n: p["state"] for n, p in down.items() if n != "mlx5_3"} == {
        n: p["state"] for n, p in fit.items() if n != "mlx5_3"}
    assert {p["roce_v2_ipv4_gid_index"] for p in fit.values()} == {3}
    assert {p["roce_v2_ipv4_gid_index"] for p in gid5.values()} == {5}
    assert {n: p["roce_v2_ipv4_gid"] for n, p in gid5.items()} == {
        n: p["roce_v2_ipv4_gid"] for n, p in fit.items()}
    assert len(_amdgpu.sysfs_gpus(str(trees["replay-7gpu"]))["gpus"]) == 7
    assert len(_amdgpu.sysfs_gpus(str(trees["replay-fit"]))["gpus"]) == 8
