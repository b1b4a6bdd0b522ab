"""inventories/mi300x-example: the real-host starting inventory parses, has the seed's 2P2D shape,
its commented DeepSeek-V3 topology parses with its counts, the playbooks accept it, and every
collection variable it sets (or shows commented out) is one some role declares."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventories" / "mi300x-example"
BIN = Path(sys.executable).parent

#: Variable families of the collection (roles' argument_specs declare them all).
PREFIXES = ("disagg_", "preflight_", "sglang_worker_", "router_", "image_", "benchmark_")

#: The RDMA device and socket interface policy (roles/_common, issue 11): the example shows each
#: of them commented out, at its default, with an explicit form.
RDMA_POLICY = {
    "disagg_kv_transport",
    "disagg_ib_devices",
    "disagg_ib_device_exclude",
    "disagg_ib_exclude_default_route_nic",
    "disagg_ib_link_layer",
    "disagg_mc_gid_index",
    "disagg_socket_ifname",
}

#: A commented-out setting: "# name: value" (not "## prose").
COMMENTED_SETTING = re.compile(r"^#\s?(?P<name>[a-z][a-z0-9_]*):(\s|$)")


def _run(*argv: str | Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def _graph(inventory: Path) -> dict[str, list[str]]:
    """Group -> hosts (direct members) from `ansible-inventory --graph`."""
    proc = _run(BIN / "ansible-inventory", "-i", inventory, "--graph")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    groups: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    for line in proc.stdout.splitlines():
        m = re.match(r"^(?P<indent>[ |]*)\|--(?P<name>@?[^:]+):?$", line)
        if not m:
            continue
        depth = len(m["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        name = m["name"]
        if name.startswith("@"):
            groups.setdefault(name[1:], [])
            stack.append((depth, name[1:]))
        elif stack:
            groups[stack[-1][1]].append(name)
    return groups


def _deepseek_inventory(tmp_path: Path) -> Path:
    """The commented DeepSeek-V3 topology of hosts.yml, uncommented as the user would, next to
    a copy of the example's group_vars."""
    lines = (EXAMPLE / "hosts.yml").read_text().splitlines()
    start = lines.index("# all:")
    block = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines[start:]]
    assert all(line.startswith("#") or not line for line in lines[start:])
    inventory = tmp_path / "deepseek-v3"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("---\n" + "\n".join(block) + "\n")
    shutil.copytree(EXAMPLE / "group_vars", inventory / "group_vars")
    return inventory


def _validate(inventory: Path, **extra: Any) -> subprocess.CompletedProcess[str]:
    return _run(BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / "validate.yml",
                "-e", json.dumps(extra))


def test_graph_is_2p2d():
    groups = _graph(EXAMPLE)
    assert groups["proxy"] == ["proxy-1"]
    assert groups["prefill"] == ["prefill-1", "prefill-2"]
    assert groups["decode"] == ["decode-1", "decode-2"]
    assert groups["mi300x_hosts"] == []  # only the three role groups, no stray hosts
    assert groups["ungrouped"] == []


def test_addresses_are_documentation_placeholders():
    """Nothing in the example reaches a real host until the user edits it (RFC 5737 ranges)."""
    data = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())
    hosts: dict[str, dict[str, Any]] = {}
    for group in data["all"]["children"]["mi300x_hosts"]["children"].values():
        hosts.update(group["hosts"])
    assert len(hosts) == 5
    for name, hostvars in hosts.items():
        for key in ("ansible_host", "disagg_host_address"):
            assert re.match(r"^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$", hostvars[key]), name
    text = (EXAMPLE / "hosts.yml").read_text()
    assert text.count("EDIT ME") >= 10


def test_deepseek_v3_topology_parses_with_its_counts(tmp_path):
    groups = _graph(_deepseek_inventory(tmp_path))
    assert len(groups["proxy"]) == 1
    assert len(groups["prefill"]) == 2
    assert len(groups["decode"]) == 4


def test_deepseek_v3_topology_fits_the_profile(tmp_path):
    """2P4D with models/DeepSeek-V3.yml (one node per instance), as the block's comment says."""
    inventory = _deepseek_inventory(tmp_path)
    proc = _validate(inventory, disagg_model_profile="DeepSeek-V3", disagg_xp=2, disagg_yd=4)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The comment's other claim: with a 2-node decode profile the four decode hosts make yD = 2.
    proc = _validate(inventory, disagg_model_profiles_dir=str(REPO / "tests/golden/profiles"),
                     disagg_model_profile="DeepSeek-R1-1P2D", disagg_xp=2, disagg_yd=2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Left at the 2P2D counts of group_vars, validation says what to change.
    proc = _validate(inventory, disagg_model_profile="DeepSeek-V3")
    assert proc.returncode != 0
    assert "group 'decode' has 4 host(s) = 4 instance(s), but disagg_yd is 2" in proc.stdout


def test_example_validates():
    """The inventory checks deploy.yml runs first (groups, counts, the model profile) pass."""
    proc = _validate(EXAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_syntax_check():
    proc = _run(BIN / "ansible-playbook", REPO / "playbooks" / "deploy.yml", "-i", EXAMPLE,
                "--syntax-check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- every collection variable the example names is declared -------------------------------------


def _declared() -> dict[str, dict[str, Any]]:
    """Option name -> its spec, over every role's meta/argument_specs.yml and entry point."""
    out: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        for entry in specs.values():
            for name, spec in (entry.get("options") or {}).items():
                out.setdefault(name, spec)
    return out


def _example_files() -> list[Path]:
    return sorted(EXAMPLE.rglob("*.yml"))


def _set_variables() -> dict[str, tuple[Path, Any]]:
    """Collection variables the example sets (uncommented): group_vars and host vars."""
    out: dict[str, tuple[Path, Any]] = {}

    def host_vars(node: Any, path: Path) -> None:
        if isinstance(node, dict):
            for host, hvars in (node.get("hosts") or {}).items():
                for key, value in (hvars or {}).items():
                    out[key] = (path / host, value)
            for key, value in (node.get("vars") or {}).items():
                out[key] = (path, value)
            for child in (node.get("children") or {}).values():
                host_vars(child, path)

    for path in _example_files():
        data = yaml.safe_load(path.read_text()) or {}
        if "group_vars" in path.parts:
            out.update({key: (path, value) for key, value in data.items()})
        else:
            for group in data.values():
                host_vars(group, path)
    return {k: v for k, v in out.items() if k.startswith(PREFIXES)}


def _commented_settings() -> list[tuple[str, Path, Any]]:
    """Collection variables shown commented out ("# name: value"), with the value as YAML reads
    it (None for a value on the following lines)."""
    out: list[tuple[str, Path, Any]] = []
    for path in _example_files():
        for line in path.read_text().splitlines():
            m = COMMENTED_SETTING.match(line.strip())
            if m and m["name"].startswith(PREFIXES):
                value = yaml.safe_load(line.strip()[1:])[m["name"]]
                out.append((m["name"], path, value))
    return out


def _commented_variables() -> dict[str, Path]:
    return {name: path for name, path, _ in _commented_settings()}


def test_set_variables_are_declared():
    declared = _declared()
    found = _set_variables()
    # disagg_image is left commented: it defaults to the image build_image.yml recorded
    assert "disagg_image" in _commented_variables()
    assert {"disagg_model_profile", "disagg_model_root", "disagg_host_address",
            "preflight_mode", "preflight_gpu_count", "disagg_router_port"} <= set(found)
    missing = {name: str(path.relative_to(REPO)) for name, (path, _) in found.items()
               if name not in declared}
    assert not missing, f"set in the example but declared by no role's argument_specs: {missing}"


def test_commented_variables_are_declared():
    """A typo in a commented example would only show when a user uncomments it."""
    declared = _declared()
    found = _commented_variables()
    assert RDMA_POLICY <= set(found), "the example shows every RDMA/socket setting commented out"
    missing = {name: str(path.relative_to(REPO)) for name, path in found.items()
               if name not in declared}
    assert not missing, f"shown in the example but declared by no role's argument_specs: {missing}"


def test_rdma_policy_shows_default_and_explicit_form():
    counts = {name: 0 for name in RDMA_POLICY}
    for name, _, _ in _commented_settings():
        if name in counts:
            counts[name] += 1
    assert all(n >= 2 for n in counts.values()), counts


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "path": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
    "list": (list,), "dict": (dict,),
}


def _type_error(name: str, value: Any, spec: dict[str, Any] | None) -> str | None:
    if spec is None or value is None or (isinstance(value, str) and "{{" in value):
        return None  # undeclared (reported elsewhere), null or templated (typed when rendered)
    kind = spec.get("type", "str")
    if kind not in _TYPES:
        return None
    number_as_bool = kind in ("int", "float") and isinstance(value, bool)
    if not isinstance(value, _TYPES[kind]) or number_as_bool:
        return f"{name}: {value!r} is not of type {kind}"
    # Ansible applies a list option's choices to each element
    items = value if kind == "list" else [value]
    if "choices" in spec and any(v not in spec["choices"] for v in items):
        return f"{name}: {value!r} is not one of {spec['choices']}"
    return None


def test_values_have_the_declared_types():
    """Set and commented-out values alike: uncommenting an example must not break the run."""
    declared = _declared()
    values = [(n, p, v) for n, (p, v) in _set_variables().items()] + _commented_settings()
    errors = [f"{path.relative_to(REPO)}: {err}" for name, path, value in values
              if (err := _type_error(name, value, declared.get(name)))]
    assert not errors, errors


# --- inventories/rehearsal-mi300x: the production path on replayed hosts --------------------------

MI300X_REHEARSAL = REPO / "inventories" / "rehearsal-mi300x"


def test_rehearsal_mi300x_graph_is_1p2d():
    groups = _graph(MI300X_REHEARSAL)
    assert groups["proxy"] == ["proxy-1"]
    assert groups["prefill"] == ["prefill-1"]
    assert groups["decode"] == ["decode-1", "decode-2"]
    assert groups["ungrouped"] == []


def test_rehearsal_mi300x_overrides_are_declared_and_typed():
    """What makes it the production path (replay.yml, preflight.yml) is collection variables only,
    each declared by a role and of its declared type."""
    declared = _declared()
    for name in ("replay.yml", "preflight.yml"):
        path = MI300X_REHEARSAL / "group_vars" / "all" / name
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            assert key.startswith(PREFIXES) and key in declared, f"{name}: {key}"
            assert _type_error(key, value, declared[key]) is None, (name, key, value)
    hosts = yaml.safe_load((MI300X_REHEARSAL / "hosts.yml").read_text())
    for group in hosts["all"]["children"]["rehearsal_hosts"]["children"].values():
        for host, hostvars in group["hosts"].items():
            tree = REPO / hostvars["rehearsal_replay_tree"]
            assert (tree / "sys" / "class" / "infiniband").is_dir(), host
