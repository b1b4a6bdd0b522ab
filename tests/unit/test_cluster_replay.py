"""scripts/cluster.py with rehearsal_replay_tree (inventories/rehearsal-mi300x): a replaying
host gets its tree read-only at /replay and its replayed tools on PATH, its config hash follows
the tree's content, and hosts without the variable get exactly what they got before."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import cluster  # noqa: E402

MI300X = REPO / "inventories" / "rehearsal-mi300x"
REPLAY_FIT = REPO / "tests" / "fixtures" / "preflight" / "trees" / "replay-fit"


@pytest.fixture
def ssh_key(tmp_path, monkeypatch):
    """A stand-in public key where _run_args reads it (no key pair is generated)."""
    (tmp_path / "ssh").mkdir()
    (tmp_path / "ssh" / "id_ed25519.pub").write_text("ssh-ed25519 AAAA test\n")
    monkeypatch.setattr(cluster, "SSH_DIR", tmp_path / "ssh")


def test_rehearsal_mi300x_hosts_replay_the_fit_tree():
    loaded = cluster.load_cluster(MI300X)
    assert loaded.name == "pdq" and loaded.subnet == "172.29.212.0/24"
    assert [h.name for h in loaded.hosts] == ["decode-1", "decode-2", "prefill-1", "proxy-1"]
    assert {h.replay_tree for h in loaded.hosts} == {REPLAY_FIT}


def test_replaying_host_mounts_its_tree_and_tools(ssh_key):
    host = cluster.load_cluster(MI300X).hosts[0]
    args = cluster._run_args(cluster.load_cluster(MI300X), host, "img")
    mounts = [args[i + 1] for i, a in enumerate(args) if a == "-v"]
    assert f"{REPLAY_FIT}:/replay:ro" in mounts
    for tool in ("amd-smi", "rocm-smi", "ibv_devinfo"):
        assert f"{cluster.REPLAY_BIN_DIR / tool}:/usr/local/bin/{tool}:ro" in mounts
    assert args[-1] == "img"


def test_hosts_without_a_tree_are_unchanged(ssh_key):
    loaded = cluster.load_cluster(REPO / "inventories" / "rehearsal")
    assert all(h.replay_tree is None for h in loaded.hosts)
    args = cluster._run_args(loaded, loaded.hosts[0], "img")
    assert not any("/replay" in a or "/usr/local/bin" in a for a in args)
    assert cluster._replay_args(loaded.hosts[0]) == []


def test_replay_scripts_exec_the_trees_tools(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "REPLAY_BIN_DIR", tmp_path / "bin")
    out = cluster.ensure_replay_bin()
    text = (out / "amd-smi").read_text()
    assert text.startswith("#!/bin/sh\n") and 'exec /replay/opt/rocm/bin/amd-smi "$@"' in text
    assert (out / "ibv_devinfo").stat().st_mode & 0o111


def test_tree_digest_follows_the_content(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(REPLAY_FIT / "sys" / "class" / "infiniband" / "mlx5_3", tree)
    before = cluster.tree_digest(tree)
    assert cluster.tree_digest(tree) == before
    (tree / "ports" / "1" / "state").write_text("1: DOWN\n")
    assert cluster.tree_digest(tree) != before


def test_a_missing_tree_is_named_with_the_fix(tmp_path):
    inventory = tmp_path / "inv"
    shutil.copytree(MI300X, inventory)
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("trees/replay-fit", "trees/nope", 1))
    with pytest.raises(cluster.ClusterError, match=r"proxy-1: rehearsal_replay_tree .*nope"):
        cluster.load_cluster(inventory)


def test_a_clone_keeps_the_trees(tmp_path):
    loaded = cluster.load_cluster(MI300X)
    dest = tmp_path / "clone"
    cluster.clone(loaded, MI300X, dest, "pdz", "172.29.250.0/24")
    cloned = cluster.load_cluster(dest)
    assert {h.replay_tree for h in cloned.hosts} == {REPLAY_FIT}
    assert sorted(h.address for h in cloned.hosts) == [
        "172.29.250.10", "172.29.250.11", "172.29.250.21", "172.29.250.22"]
    assert not (dest / "group_vars" / "all" / "disagg.yml").is_symlink()
