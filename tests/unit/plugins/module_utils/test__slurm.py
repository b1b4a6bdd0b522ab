"""Tables for the Slurm module_utils: nodelist expansion, counts, the seed's role assignment."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".cache" / "collections"))

from ansible_collections.inferops.disagg.plugins.module_utils import _slurm  # noqa: E402

# Real SLURM_JOB_NODELIST forms (as Slurm prints them) and what `scontrol show hostnames` gives.
EXPAND_CASES = [
    ("node[1-4]", ["node1", "node2", "node3", "node4"]),
    ("node[01-04,07]", ["node01", "node02", "node03", "node04", "node07"]),
    ("gpu-a[1-2],gpu-b3", ["gpu-a1", "gpu-a2", "gpu-b3"]),
    ("mi300x-[001-003]", ["mi300x-001", "mi300x-002", "mi300x-003"]),
    ("smc[9-11]", ["smc9", "smc10", "smc11"]),
    ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
    ("node[1-2],node[5-6]", ["node1", "node2", "node5", "node6"]),
    ("gpu-[1,3,5]", ["gpu-1", "gpu-3", "gpu-5"]),
    ("single", ["single"]),
    ("  node[1-2]\n", ["node1", "node2"]),
    ("n1.cluster.local,n2.cluster.local", ["n1.cluster.local", "n2.cluster.local"]),
    ("mi300_[1-2]", ["mi300_1", "mi300_2"]),
]


@pytest.mark.parametrize(("nodelist", "expected"), EXPAND_CASES)
def test_expand_nodelist(nodelist, expected):
    assert _slurm.expand_nodelist(nodelist) == expected


EXPAND_ERRORS = [
    ("", "the Slurm nodelist is empty"),
    ("   ", "the Slurm nodelist is empty"),
    ("node[1-", "cannot expand Slurm nodelist 'node[1-': unbalanced brackets"),
    ("node[3-1]", "cannot expand Slurm nodelist 'node[3-1]': start > stop"),
    ("node[1-3],node2", "nodelist 'node[1-3],node2': node 'node2' is listed twice"),
    ("node1,bad name", "'bad name' is not a valid node name"),
]


@pytest.mark.parametrize(("nodelist", "message"), EXPAND_ERRORS)
def test_expand_nodelist_errors(nodelist, message):
    with pytest.raises(ValueError, match=None) as info:
        _slurm.expand_nodelist(nodelist)
    assert message in str(info.value)


SCONTROL_CASES = [
    ("node01\nnode02\nnode07\n", ["node01", "node02", "node07"]),
    ("gpu-a1\n\ngpu-b3\n", ["gpu-a1", "gpu-b3"]),
]


@pytest.mark.parametrize(("stdout", "expected"), SCONTROL_CASES)
def test_parse_scontrol_hostnames(stdout, expected):
    assert _slurm.parse_scontrol_hostnames(stdout) == expected


def test_parse_scontrol_hostnames_empty():
    with pytest.raises(ValueError, match="no nodes in the allocation"):
        _slurm.parse_scontrol_hostnames("\n", "node[1-2]")


def test_scontrol_missing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="scontrol is not on PATH"):
        _slurm.scontrol_hostnames("node[1-2]")


def test_scontrol_stand_in(tmp_path):
    """A stand-in scontrol with Slurm's output format; a failing one reports rc and stderr."""
    fake = tmp_path / "scontrol"
    fake.write_text("#!/bin/sh\n[ \"$3\" = 'bad[' ] && { echo 'Invalid hostlist' >&2; exit 1; }\n"
                    "printf 'node01\\nnode02\\n'\n")
    fake.chmod(0o755)
    assert _slurm.scontrol_hostnames("node[01-02]", str(fake)) == ["node01", "node02"]
    with pytest.raises(ValueError, match=r"exited 1: Invalid hostlist"):
        _slurm.scontrol_hostnames("bad[", str(fake))


COUNT_CASES = [(1, 1), ("2", 2), (" 3 ", 3), ("+4", 4), (12, 12)]


@pytest.mark.parametrize(("value", "expected"), COUNT_CASES)
def test_parse_count(value, expected):
    assert _slurm.parse_count("xP", value) == expected


COUNT_ERRORS = [
    ("two", "xP must be an integer >= 1, got 'two'"),
    ("", "xP must be an integer >= 1, got ''"),
    ("1.5", "xP must be an integer >= 1, got '1.5'"),
    ("-1", "xP must be an integer >= 1, got '-1'"),
    (0, "xP must be an integer >= 1, got 0"),
    ("0", "xP must be an integer >= 1, got 0"),
    (True, "xP must be an integer >= 1, got True"),
    (None, "xP must be an integer >= 1, got None"),
]


@pytest.mark.parametrize(("value", "message"), COUNT_ERRORS)
def test_parse_count_errors(value, message):
    with pytest.raises(ValueError) as info:
        _slurm.parse_count("xP", value)
    assert str(info.value) == message


# (nodes, xp, yd, colocate) -> (proxy, prefill, decode, spare)
ASSIGN_CASES = [
    # the acceptance case: SLURM_JOB_NODELIST=node[1-4], xP=2, yD=1
    ("node[1-4]", 2, 1, False, ("node1", ["node2", "node3"], ["node4"], [])),
    # the seed's 1P1D default (sbatch -N 3)
    ("node[1-3]", 1, 1, False, ("node1", ["node2"], ["node3"], [])),
    # the docs' salloc -N 5 with xP=2 yD=2
    ("node[01-04,07]", 2, 2, False,
     ("node01", ["node02", "node03"], ["node04", "node07"], [])),
    ("gpu-a[1-2],gpu-b3", 1, 1, False, ("gpu-a1", ["gpu-a2"], ["gpu-b3"], [])),
    # more nodes than needed: the seed takes the first NUM_NODES, the rest are spare
    ("node[1-6]", 2, 1, False, ("node1", ["node2", "node3"], ["node4"], ["node5", "node6"])),
    # router co-located with prefill rank 0 (the seed's later MoRI era): xP + yD nodes
    ("node[1-3]", 2, 1, True, ("node1", ["node1", "node2"], ["node3"], [])),
    ("gpu-a[1-2],gpu-b3", 1, 2, True, ("gpu-a1", ["gpu-a1"], ["gpu-a2", "gpu-b3"], [])),
]


@pytest.mark.parametrize(("nodelist", "xp", "yd", "colocate", "expected"), ASSIGN_CASES)
def test_assign_roles(nodelist, xp, yd, colocate, expected):
    alloc = _slurm.assign_roles(_slurm.expand_nodelist(nodelist), xp, yd, colocate_proxy=colocate)
    assert (alloc.proxy, alloc.prefill, alloc.decode, alloc.spare) == expected


def test_ranks_follow_the_seed():
    """rank 0 proxy, 1..xP prefill, xP+1..xP+yD decode (the seed's NODE_RANK)."""
    alloc = _slurm.assign_roles(["a", "b", "c", "d", "e"], 2, 2)
    assert alloc.rank == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4}
    assert alloc.nodes == ["a", "b", "c", "d", "e"]
    colocated = _slurm.assign_roles(["a", "b", "c", "d"], 2, 2, colocate_proxy=True)
    assert colocated.rank == {"a": 0, "b": 1, "c": 2, "d": 3}


ASSIGN_ERRORS = [
    ("node[1-3]", 2, 2, False, True, "allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5"),
    ("node1", 1, 1, False, True, "allocation has 1 node; xP=1 + yD=1 + 1 proxy needs 3"),
    ("node[1-3]", 2, 2, True, True,
     "allocation has 3 nodes; xP=2 + yD=2 (proxy co-located with the first prefill) needs 4"),
    ("node[1-5]", 2, 1, False, False,
     "allocation has 5 nodes; xP=2 + yD=1 + 1 proxy needs exactly 4 "
     "(set allow_spare_nodes to leave 1 unused)"),
    ("node[1-5]", 0, 1, False, True, "xP must be an integer >= 1, got 0"),
    ("node[1-5]", 1, "x", False, True, "yD must be an integer >= 1, got 'x'"),
]


@pytest.mark.parametrize(("nodelist", "xp", "yd", "colocate", "spare", "message"), ASSIGN_ERRORS)
def test_assign_roles_errors(nodelist, xp, yd, colocate, spare, message):
    with pytest.raises(ValueError) as info:
        _slurm.assign_roles(_slurm.expand_nodelist(nodelist), xp, yd, colocate_proxy=colocate,
                            allow_spare=spare)
    assert str(info.value) == message


@pytest.mark.parametrize(("xp", "yd", "colocate", "need"), [(1, 1, False, 3), (2, 2, False, 5),
                                                            (2, 2, True, 4), (4, 1, True, 5)])
def test_needed_nodes(xp, yd, colocate, need):
    assert _slurm.needed_nodes(xp, yd, colocate) == need


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    """A minimal slurm.conf: enough for `scontrol show hostnames`, which needs no daemon."""
    if not shutil.which("scontrol"):
        pytest.skip("Slurm's scontrol is not installed (apt-get install slurm-client)")
    path = tmp_path_factory.mktemp("slurm") / "slurm.conf"
    path.write_text("ClusterName=unit\nSlurmctldHost=localhost\n")
    return path


@pytest.mark.parametrize(("nodelist", "expected"), EXPAND_CASES)
def test_python_hostlist_matches_real_scontrol(nodelist, expected, slurm_conf, monkeypatch):
    """Same expansion, same order as the cluster's own `scontrol show hostnames`."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_conf))
    assert _slurm.scontrol_hostnames(nodelist) == expected == _slurm.expand_nodelist(nodelist)
