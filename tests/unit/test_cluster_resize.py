"""scripts/cluster.py clone --xp/--yd: a rehearsal inventory of any xPyD size (issue 13)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import cluster  # noqa: E402

REHEARSAL = REPO / "inventories" / "rehearsal"
MI300X = REPO / "inventories" / "rehearsal-mi300x"


def _clone(tmp_path: Path, source: Path, xp: int | None, yd: int | None) -> cluster.Cluster:
    dest = tmp_path / "clone"
    cluster.clone(cluster.load_cluster(source), source, dest, "pdz", "172.29.250.0/24", xp, yd)
    return cluster.load_cluster(dest)


def test_16p15d_makes_32_hosts_with_distinct_addresses(tmp_path):
    hosts = {h.name: h.address for h in _clone(tmp_path, REHEARSAL, 16, 15).hosts}
    assert len(hosts) == 32 and len(set(hosts.values())) == 32
    assert hosts["proxy-1"] == "172.29.250.10"
    assert (hosts["prefill-1"], hosts["prefill-16"]) == ("172.29.250.101", "172.29.250.116")
    assert (hosts["decode-1"], hosts["decode-15"]) == ("172.29.250.201", "172.29.250.215")


def test_small_layouts_keep_the_2p1d_addresses(tmp_path):
    hosts = {h.name: h.address for h in _clone(tmp_path, REHEARSAL, 3, 2).hosts}
    assert hosts == {"proxy-1": "172.29.250.10", "prefill-1": "172.29.250.11",
                     "prefill-2": "172.29.250.12", "prefill-3": "172.29.250.13",
                     "decode-1": "172.29.250.21", "decode-2": "172.29.250.22"}


def test_new_hosts_copy_the_first_hosts_variables(tmp_path):
    cloned = _clone(tmp_path, MI300X, 2, 3)
    assert len(cloned.hosts) == 6
    assert len({h.replay_tree for h in cloned.hosts if h.name != "proxy-1"}) == 1


def test_counts_out_of_range_are_refused(tmp_path):
    with pytest.raises(cluster.ClusterError, match="--xp must be 1-99 and --yd 1-54, got 0 and 1"):
        _clone(tmp_path, REHEARSAL, 0, 1)
    with pytest.raises(cluster.ClusterError, match="got 2 and 55"):
        _clone(tmp_path, REHEARSAL, 2, 55)
