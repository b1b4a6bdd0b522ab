"""The ``inferops.disagg.slurm`` inventory plugin through Ansible's own InventoryManager."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

REPO = Path(__file__).resolve().parents[4]
COLLECTIONS = REPO / ".cache" / "collections"  # the loader is set up in tests/conftest.py

SLURM_ENV = ("SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_ID", "xP", "yD",
             "DISAGG_COLOCATE_PROXY")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in SLURM_ENV:
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, body: str, name: str = "alloc.slurm.yml") -> Path:
    path = tmp_path / name
    path.write_text("plugin: inferops.disagg.slurm\n" + body)
    return path


def load(path: Path) -> InventoryManager:
    """Parse one source strictly: a plugin error becomes an exception, not a warning."""
    inv = InventoryManager(loader=DataLoader(), sources=None)
    inv.parse_source(str(path))
    return inv


def groups(inv: InventoryManager) -> dict[str, list[str]]:
    return {name: [h.name for h in inv.groups[name].get_hosts()]
            for name in ("proxy", "prefill", "decode", "slurm_spare")}


def parse_error(path: Path) -> str:
    """The plugin's own error when parsing ``path`` with it directly."""
    plugin = inventory_loader.get("inferops.disagg.slurm")
    inv = InventoryManager(loader=DataLoader(), sources=None)
    with pytest.raises(AnsibleError) as info:
        plugin.parse(inv._inventory, DataLoader(), str(path), cache=False)
    return str(info.value)


def test_fqcn_name_and_verify_file(tmp_path):
    plugin = inventory_loader.get("inferops.disagg.slurm")
    assert plugin.NAME == "inferops.disagg.slurm"
    for good in ("a.slurm.yml", "b.slurm.yaml"):
        assert plugin.verify_file(str(write(tmp_path, "", good)))
    for bad in ("hosts.yml", "slurm.yml", "a.slurm.json", "a.slurm.yml.bak", "slurm.yaml"):
        assert not plugin.verify_file(str(write(tmp_path, "", bad))), bad
    assert not plugin.verify_file(str(tmp_path / "missing.slurm.yml"))


def test_acceptance_node1_4_xp2_yd1_from_env(tmp_path, monkeypatch):
    """The issue's acceptance case: the seed's roles for node[1-4], xP=2, yD=1."""
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node[1-4]")
    monkeypatch.setenv("xP", "2")
    monkeypatch.setenv("yD", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    inv = load(write(tmp_path, ""))
    assert groups(inv) == {"proxy": ["node1"], "prefill": ["node2", "node3"],
                           "decode": ["node4"], "slurm_spare": []}
    node3 = inv.get_host("node3").get_vars()
    assert node3["disagg_node_rank"] == 2
    assert inv.groups["slurm_allocation"].get_vars()["slurm_job_id"] == "4242"
    assert inv.groups["slurm_allocation"].get_vars()["disagg_xp"] == 2


def test_options_from_file_win_over_nothing_and_env_is_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_NODELIST", "ignored[1-9]")
    inv = load(write(tmp_path, "nodelist: node[01-04,07]\nxp: 2\nyd: 2\n"))
    assert groups(inv) == {"proxy": ["node01"], "prefill": ["node02", "node03"],
                           "decode": ["node04", "node07"], "slurm_spare": []}


def test_seed_defaults_1p1d(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_NODELIST", "gpu-a[1-2],gpu-b3")
    inv = load(write(tmp_path, ""))
    assert groups(inv) == {"proxy": ["gpu-a1"], "prefill": ["gpu-a2"], "decode": ["gpu-b3"],
                           "slurm_spare": []}


def test_colocated_proxy(tmp_path):
    inv = load(write(tmp_path, "nodelist: gpu-a[1-2],gpu-b3\nxp: 2\nyd: 1\n"
                               "colocate_proxy: true\n"))
    assert groups(inv) == {"proxy": ["gpu-a1"], "prefill": ["gpu-a1", "gpu-a2"],
                           "decode": ["gpu-b3"], "slurm_spare": []}
    assert inv.get_host("gpu-a1").get_vars()["disagg_node_rank"] == 0
    assert inv.groups["slurm_allocation"].get_vars()["disagg_colocate_proxy"] is True
    assert inv.groups["slurm_allocation"].get_vars()["disagg_allow_colocation"] is True


def test_spare_nodes(tmp_path):
    inv = load(write(tmp_path, "nodelist: node[1-6]\nxp: 2\nyd: 1\n"))
    assert groups(inv)["slurm_spare"] == ["node5", "node6"]
    assert "disagg_node_rank" not in inv.get_host("node5").get_vars()


def test_constructed_compose_and_groups(tmp_path):
    inv = load(write(tmp_path, "nodelist: node[1-3]\n"
                               "compose:\n  ansible_host: inventory_hostname ~ '.fabric'\n"
                               "groups:\n  workers: disagg_node_rank > 0\n"))
    assert inv.get_host("node2").get_vars()["ansible_host"] == "node2.fabric"
    assert sorted(h.name for h in inv.groups["workers"].get_hosts()) == ["node2", "node3"]


ERRORS = [
    ("nodelist: node[1-3]\nxp: 2\nyd: 2\n", {},
     "allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5"),
    ("", {"SLURM_JOB_NODELIST": "node[1-3]", "xP": "2", "yD": "2"},
     "allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5"),
    ("", {"SLURM_JOB_NODELIST": "node[1-3]", "xP": "two"}, "xP must be an integer >= 1, got 'two'"),
    ("", {}, "the Slurm nodelist is empty (is SLURM_JOB_NODELIST set?"),
    ("nodelist: node[1-\n", {}, "cannot expand Slurm nodelist 'node[1-': unbalanced brackets"),
    ("nodelist: node[1-5]\nallow_spare_nodes: false\n", {},
     "allocation has 5 nodes; xP=1 + yD=1 + 1 proxy needs exactly 3"),
]


@pytest.mark.parametrize(("body", "env", "message"), ERRORS)
def test_validation_messages(tmp_path, monkeypatch, body, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert message in parse_error(write(tmp_path, body))


def test_scontrol_backend(tmp_path):
    fake = tmp_path / "scontrol"
    fake.write_text("#!/bin/sh\nprintf 'n01\\nn02\\nn03\\n'\n")
    fake.chmod(0o755)
    inv = load(write(tmp_path, f"nodelist: n[01-03]\nhostlist_backend: scontrol\n"
                               f"scontrol_path: {fake}\n"))
    assert groups(inv)["proxy"] == ["n01"]


def test_ansible_inventory_cli(tmp_path):
    """The real CLI through ansible.cfg's collections_path, as users run it."""
    path = write(tmp_path, "")
    env = dict(os.environ, SLURM_JOB_NODELIST="node[1-4]", xP="2", yD="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(path),
                          "--graph"], capture_output=True, text=True, env=env, cwd=REPO,
                         check=True).stdout
    assert "@proxy:\n  |  |--node1\n" in out
    assert "@decode:\n  |  |--node4\n" in out


def test_cache_is_keyed_by_the_allocation(tmp_path, monkeypatch):
    """With the inventory cache on, a new allocation (env) is not served the old one's roles."""
    cache_dir = tmp_path / "cache"
    path = write(tmp_path, f"cache: true\ncache_plugin: ansible.builtin.jsonfile\n"
                           f"cache_connection: {cache_dir}\n")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node[1-3]")
    assert groups(load(path))["proxy"] == ["node1"]
    assert len(list(cache_dir.iterdir())) == 1
    assert groups(load(path))["proxy"] == ["node1"]  # from the cache
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[7-9]")
    assert groups(load(path))["proxy"] == ["gpu7"]
    assert len(list(cache_dir.iterdir())) == 2
