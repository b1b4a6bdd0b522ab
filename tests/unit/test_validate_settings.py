"""playbooks/validate.yml refuses bad hosts and variables on the controller, before any host is
touched (the inventory's hosts are unreachable documentation addresses: no SSH is tried), with
one short line per problem; misspelled variables are warnings; disagg_ignore_assert_errors
prints what it ignored. Also: the committed SGLang flag list is the parser's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _inventory(tmp_path: Path, **hostvars: dict[str, Any]) -> Path:
    hosts = {"proxy": ["proxy-1"], "prefill": ["prefill-1"], "decode": ["decode-1", "decode-2"]}
    addresses = {"proxy-1": "192.0.2.10", "prefill-1": "192.0.2.11", "decode-1": "192.0.2.21",
                 "decode-2": "192.0.2.22"}
    path = tmp_path / "hosts.yml"
    children = {}
    for group, names in hosts.items():
        children[group] = {"hosts": {
            h: {"ansible_host": addresses[h], **hostvars.get(h.replace("-", "_"), {})}
            for h in names}}
    path.write_text(yaml.safe_dump({"all": {"children": children}}))
    return path


def _validate(inventory: Path, extra: dict[str, Any]) -> tuple[int, str]:
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory),
         str(REPO / "playbooks" / "validate.yml"), "-e",
         json.dumps({"disagg_model_profile": "rehearsal-tiny", **extra})],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    # the YAML callback folds long lines and doubles quotes: compare words
    out = proc.stdout + proc.stderr
    return proc.returncode, " ".join(out.replace("''", "'").split())


def test_every_problem_is_named_in_one_run(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, decode_2={"ansible_host": "192.0.2.21"},
                           prefill_1={"disagg_prefill_port": "abc"})
    rc, out = _validate(inventory, {
        "disagg_router_prometheus_port": 30000, "disagg_decode_port": 70000, "disagg_xp": 0,
        "disagg_transfer_backend": "nixl", "disagg_mooncake_metadata": "etcd",
        "disagg_etcd_host": "proxy-9", "disagg_name": "my pd",
        "sglang_worker_extra_args": ["--tp-sise", "2"], "preflight_mode": "strict"})
    assert rc != 0, out
    for fragment in (
        "hosts decode-1, decode-2 all have the address 192.0.2.21",
        "disagg_prefill_port must be an integer, got 'abc' (str) on prefill-1",
        "proxy-1: disagg_router_prometheus_port and disagg_router_port are both 30000",
        "disagg_decode_port: 70000 is not a port (an integer 1-65535) on decode-1",
        "disagg_xp must be a positive integer",
        "disagg_transfer_backend 'nixl' is not supported",
        "disagg_etcd_host 'proxy-9' is not a host of this inventory",
        "disagg_name 'my pd' cannot be part of a container name",
        "sglang_worker_extra_args (all 3 worker hosts): --tp-sise is not a flag of SGLang "
        "0.5.2's launch_server. Fix: did you mean --tp-size?",
        "preflight_mode must be a string (one of enforce, warn), got 'strict'",
    ):
        assert fragment in out, fragment + "\n" + out[-4000:]
    assert "UNREACHABLE" not in out and "ssh" not in out.lower()


def test_misspelled_variable_warns_and_ignore_flag_prints_what_it_ignored(tmp_path: Path) -> None:
    rc, out = _validate(_inventory(tmp_path), {"disagg_xpp": 2})
    assert rc == 0, out[-3000:]
    assert ("disagg_xpp is set in the inventory but no role of inferops.disagg uses it, so it "
            "has no effect; did you mean disagg_xp?") in out
    rc, out = _validate(_inventory(tmp_path), {"disagg_ignore_assert_errors": True,
                                               "disagg_name": "my pd"})
    assert rc == 0, out[-3000:]
    assert "disagg_ignore_assert_errors is true" in out
    assert "disagg_name 'my pd' cannot be part of a container name" in out


def test_broken_profile_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "broken.yml").write_text("prefill:\n  tp: 1\n  extra_args: [--foo\ndecode:\n")
    rc, out = _validate(_inventory(tmp_path), {"disagg_model_profiles_dir": str(profiles),
                                               "disagg_model_profile": "broken"})
    assert rc != 0
    assert f"model profile {profiles / 'broken.yml'}: line 4, column 7: not valid YAML" in out


def test_sglang_flag_list_is_the_parsers() -> None:
    pytest.importorskip("sglang")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sglang_flags.py"), "--check"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
