"""Seed equivalence: the worker command lines and environments the collection renders for the
seed's eight models on inventories/mi300x-example, compared flag by flag with the seed's own
(ROCm/MAD scripts/sglang_disagg, as shared/MAD_SPEC.md describes them).

The collection side is rendered by the code the deploy and the golden launch tests use:
``_launch.sglang_worker_args`` (the ``sglang_worker_args`` filter), ``_launch.merge_env`` (the
``sglang_worker_env`` filter, with the layers of roles/sglang_worker/tasks/configure.yml) and
``_derive.derive`` (the ``launch_settings`` filter: RDMA devices, MC_GID_INDEX, socket interface)
fed with RDMA facts of a host of the seed's cluster. Inventory values come from the example
inventory over the collection defaults.

The seed side is transcribed below by hand, citing the MAD_SPEC.md section of every value.

Host-specific values are compared by role, not literally: both sides' model path, own address,
HTTP port, RDMA device list and socket interface become ``{model_path}``, ``{address}``,
``{port}``, ``{rdma_devices}`` and ``{socket_ifname}`` (and ``MC_GID_INDEX``'s value
``{gid_index}``). Every remaining difference must be listed in models/README.md
(documented in models/README.md, "Differences from the seed's command lines"); a listed
difference that no longer occurs fails as stale.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventories" / "mi300x-example"
README = REPO / "models" / "README.md"
SECTION = "## Differences from the seed's command lines"
WHERE = "models/README.md (differences)"
KINDS = ("seed-bug-fixed", "newer-sglang", "deliberate", "open")
MODES = ("prefill", "decode")


def _module_util(name: str) -> ModuleType:
    """plugins/module_utils/<name>.py loaded by path (pure modules, as the golden tests do)."""
    path = REPO / "plugins" / "module_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"inferops_seed_eq_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_launch = _module_util("_launch")
_derive = _module_util("_derive")

# --------------------------------------------------------------------------------------------
# The seed (transcribed from shared/MAD_SPEC.md; E2 = ROCm/MAD@7a3f43fa unless noted)
# --------------------------------------------------------------------------------------------

#: MAD_SPEC.md 4.4 "Prefill node": ``python3 -m sglang.launch_server``.
SEED_LAUNCHER = ["python3", "-m", "sglang.launch_server"]

#: MAD_SPEC.md 4.4 "Prefill node" / "Decode node": the flags every model gets. The values are
#: roles: --model-path is $MODEL_PATH = <root>/<MODEL_NAME> (3.3), --host the node's own IP,
#: --port 2322 (4.4, 8), --disaggregation-ib-device $IBDEVICES (4.3).
SEED_COMMON_ARGS: dict[str, str | bool] = {
    "--model-path": "{model_path}",
    "--disaggregation-ib-device": "{rdma_devices}",
    "--disaggregation-transfer-backend": "mooncake",
    "--host": "{address}",
    "--port": "{port}",
    "--stream-output": True,
    "--trust-remote-code": True,
}

#: MAD_SPEC.md 4.4: the per-model flags of MODEL_PREFILL_CONFIGS / MODEL_DECODE_CONFIGS, the
#: same for prefill and decode.
SEED_MODEL_ARGS: dict[str, dict[str, str | bool]] = {
    # 4.4 (E2 map) and 1 (docs data file, dense models; E1 and E2 VALID_MODELS)
    "Llama-3.1-8B-Instruct": {"--tp-size": "8"},
    # 4.4 (E2 map) and 1 (docs, dense; E1 and E2 VALID_MODELS)
    "Llama-3.1-405B-Instruct-FP8-KV": {"--tp-size": "8"},
    # 4.4 (E2 map) and 1 (docs, dense; E1 and E2 VALID_MODELS)
    "amd-Llama-3.3-70B-Instruct-FP8-KV": {"--tp-size": "8"},
    # 4.4 (E2 map) and 1 (docs, dense; E1 and E2 VALID_MODELS)
    "Qwen3-32B": {"--tp-size": "8"},
    # 4.4 (E2 map) and 1 (docs page 2026-01-23, small experts; E2 VALID_MODELS)
    "DeepSeek-V3": {"--tp-size": "8"},
    # 4.4 (E2 map) and 1 (docs, small experts; E1 and E2 VALID_MODELS)
    "Mixtral-8x7B-v0.1": {"--tp-size": "8"},
    # 1 ("Later versions ... rename Mixtral to Mixtral-8x7B-Instruct-v0.1"): the renamed entry
    # of 4.4's map, --tp-size 8.
    "Mixtral-8x7B-Instruct-v0.1": {"--tp-size": "8"},
    # 1 (E1 VALID_MODELS and README only). E1's server script is not retrievable (0, 4); 9.9:
    # "Uniform --tp-size 8 for every model". (E2's map lacks it; its fallback, --tp-size 4 for
    # an unknown model, never ran for it: E2's VALID_MODELS refuses the name.)
    "Qwen3-30B-A3B": {"--tp-size": "8"},
}

#: MAD_SPEC.md 4.3: set_env_vars.sh (ROCm/MAD@5053f827), sourced on every node before the
#: server starts; NCCL_SOCKET_IFNAME gets the eight HCA names appended (4.3 calls it a bug).
SEED_HCAS = "mlx5_0,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_7,mlx5_8,mlx5_9"
SEED_ENV: dict[str, str] = {
    "NCCL_IGNORE_CPU_AFFINITY": "1",
    "NCCL_IB_DISABLE": "1",
    "NCCL_SOCKET_IFNAME": "{socket_ifname}," + SEED_HCAS,
    "GLOO_SOCKET_IFNAME": "{socket_ifname}",
    "IBDEVICES": "{rdma_devices}",
    "HSA_NO_SCRATCH_RECLAIM": "1",
}
#: MAD_SPEC.md 4.3 / 4.4: ``MC_TE_METRIC=true`` inline on the prefill command only.
SEED_MODE_ENV: dict[str, dict[str, str]] = {"prefill": {"MC_TE_METRIC": "true"}, "decode": {}}
SEED_MODELS = tuple(SEED_MODEL_ARGS)


def seed_command(model: str, mode: str) -> tuple[list[str], dict[str, str | bool], dict[str, str]]:
    """The seed's launcher, flags (by role) and worker environment for a model and mode."""
    args = {
        **SEED_COMMON_ARGS,
        "--disaggregation-mode": mode,  # 4.4: prefill on ranks 1..xP, decode on the rest
        **SEED_MODEL_ARGS[model],
    }
    return SEED_LAUNCHER, args, {**SEED_ENV, **SEED_MODE_ENV[mode]}


# --------------------------------------------------------------------------------------------
# The collection on inventories/mi300x-example
# --------------------------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def inventory_vars() -> dict[str, Any]:
    """roles/_common defaults, overridden by the example inventory's group_vars/all."""
    merged = dict(_yaml(REPO / "roles" / "_common" / "defaults" / "main.yml"))
    for path in sorted((EXAMPLE / "group_vars" / "all").glob("*.yml")):
        merged.update(_yaml(path) or {})
    return merged


def inventory_hosts(group: str) -> dict[str, dict[str, Any]]:
    children = _yaml(EXAMPLE / "hosts.yml")["all"]["children"]["mi300x_hosts"]["children"]
    return dict(children[group]["hosts"])


#: RDMA facts (inferops.disagg.rdma_facts' shape) of a host of the seed's cluster (MAD_SPEC.md
#: 4.3): ten mlx5 devices, RoCE; mlx5_1 is the front-end NIC carrying the default route
#: (ens1np0), mlx5_6 the other front-end NIC, not up on the back-end fabric; the eight CX-7
#: back-end NICs have their RoCE v2 IPv4 GID at index 3.
SEED_HOST_DEFAULT_IFNAME = "ens1np0"


def seed_host_rdma() -> dict[str, Any]:
    devices = []
    for i in range(10):
        port = {
            "port": 1,
            "state": "DOWN" if i == 6 else "ACTIVE",
            "link_layer": "Ethernet",
            "netdev": SEED_HOST_DEFAULT_IFNAME if i == 1 else f"rdma{i}",
            "roce_v2_ipv4_gid_index": 3,
        }
        devices.append({"name": f"mlx5_{i}", "ports": [port]})
    return {"devices": devices}


def launch_settings(ivars: dict[str, Any], host: str) -> dict[str, Any]:
    """What roles/sglang_worker/tasks/derive.yml derives for the host (no error allowed)."""
    settings = {
        "kv_transport": ivars["disagg_kv_transport"],
        "ib_devices": ivars["disagg_ib_devices"],
        "ib_device_exclude": ivars["disagg_ib_device_exclude"],
        "exclude_default_route_nic": bool(ivars["disagg_ib_exclude_default_route_nic"]),
        "link_layer": ivars["disagg_ib_link_layer"],
        "mc_gid_index": ivars["disagg_mc_gid_index"],
        "socket_ifname": ivars["disagg_socket_ifname"],
    }
    out = _derive.derive(host, settings, seed_host_rdma(), SEED_HOST_DEFAULT_IFNAME)
    assert out["errors"] == [], out["errors"]
    return out


def collection_command(
    profile: dict[str, Any], mode: str
) -> tuple[list[str], list[str], dict[str, str], dict[str, str]]:
    """Launcher, argv, env (as configure.yml renders them) and the role values of the host."""
    ivars = inventory_vars()
    host, hostvars = next(iter(inventory_hosts(mode).items()))  # prefill-1, decode-1
    address = hostvars.get("disagg_host_address") or hostvars["ansible_host"]
    derived = launch_settings(ivars, host)
    port = ivars["disagg_prefill_port"] if mode == "prefill" else ivars["disagg_decode_port"]
    settings = profile[mode]
    topology = {
        "mode": mode,
        "model_path": f"{ivars['disagg_model_root']}/{profile['name']}",
        "served_model_name": profile["name"],
        "host": address,
        "port": port,
        "transfer_backend": ivars["disagg_transfer_backend"],
        "bootstrap_port": ivars["disagg_bootstrap_port"],
        "ib_devices": derived["ib_device_arg"],
        "nnodes": settings.get("nnodes") or 1,
        "node_rank": 0,
        "dist_init_addr": f"{address}:{ivars['disagg_dist_init_port']}",
        "extra_args": [],  # sglang_worker_extra_args: the role default
    }
    args = _launch.sglang_worker_args(topology, settings)
    assert ivars["disagg_mooncake_metadata"] == "p2p"  # so no metadata env layer
    env = _launch.merge_env(
        ivars["disagg_container_env"], derived["env"], {}, settings.get("env") or {}, {}
    )
    roles = {
        "{model_path}": topology["model_path"],
        "{address}": str(address),
        "{port}": str(port),
        "{rdma_devices}": derived["ib_device_arg"],
        "{socket_ifname}": str(derived["socket_ifname"]),
        "{gid_index}": str(derived["mc_gid_index"]),
    }
    return list(ivars["disagg_launcher"]), args, env, roles


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def flags(args: list[str]) -> dict[str, str | bool]:
    """``--flag v [v...]`` groups as {flag: "v ..."}; a flag without value is True."""
    out: dict[str, str | bool] = {}
    current: str | None = None
    for arg in args:
        if arg.startswith("--"):
            assert arg not in out, f"{arg} given twice"
            out[arg], current = True, arg
        else:
            assert current is not None, f"value {arg!r} before any flag"
            previous = out[current]
            out[current] = arg if previous is True else f"{previous} {arg}"
    return out


def by_role(value: str | bool, roles: dict[str, str]) -> str | bool:
    """A host-specific value as its role token (whole values only)."""
    if isinstance(value, bool):
        return value
    for token, actual in roles.items():
        if actual and value == actual:
            return token
    return value


Difference = tuple[str, str, str, str | bool | None, str | bool | None]


def differences(model: str, mode: str, profile: dict[str, Any]) -> set[Difference]:
    """(mode, "flag"|"env"|"launcher", name, seed value, collection value); None = absent."""
    seed_launcher, seed_args, seed_env = seed_command(model, mode)
    launcher, args, env, roles = collection_command(profile, mode)
    found: set[Difference] = set()
    if launcher != seed_launcher:
        found.add((mode, "launcher", "argv", " ".join(seed_launcher), " ".join(launcher)))
    ours_args = {k: by_role(v, roles) for k, v in flags(args).items()}
    ours_env = {k: by_role(v, roles) for k, v in env.items()}
    for kind, seed, ours in (("flag", seed_args, ours_args), ("env", seed_env, ours_env)):
        for name in sorted(set(seed) | set(ours)):
            if seed.get(name) != ours.get(name):
                found.add((mode, kind, name, seed.get(name), ours.get(name)))
    return found


def _value(entry: dict[str, Any], key: str, model: str) -> str | bool | None:
    value = entry.get(key)
    if value is None or isinstance(value, bool):
        return value
    return str(value).replace("{name}", model)


def listed() -> list[dict[str, Any]]:
    """The YAML block of models/README.md's section SECTION, checked for shape."""
    text = README.read_text()
    assert SECTION in text, f"models/README.md has no section {SECTION!r}"
    block = re.search(r"^```yaml\n(.*?)^```$", text.split(SECTION, 1)[1], re.S | re.M)
    assert block, f"models/README.md, {SECTION!r}: no ```yaml block"
    data = yaml.safe_load(block.group(1))
    assert data["schema"] == 1
    entries = data["differences"]
    for i, entry in enumerate(entries):
        where = f"{WHERE} entry {i + 1} ({entry.get('flag') or entry.get('env')})"
        assert set(entry) <= {
            "flag",
            "env",
            "launcher",
            "seed",
            "collection",
            "models",
            "modes",
            "kind",
            "reason",
        }, where
        assert sum(k in entry for k in ("flag", "env", "launcher")) == 1, where
        assert entry.get("kind") in KINDS, f"{where}: kind must be one of {KINDS}"
        assert str(entry.get("reason") or "").strip(), f"{where}: a reason is required"
        assert set(entry.get("modes") or MODES) <= set(MODES), where
        unknown = set(entry.get("models") or SEED_MODELS) - set(SEED_MODELS)
        assert not unknown, f"{where}: not a seed model: {sorted(unknown)}"
    return entries


def expected(model: str) -> dict[Difference, int]:
    """The differences models/README.md lists for a model, with their entry number."""
    out: dict[Difference, int] = {}
    for i, entry in enumerate(listed()):
        if model not in (entry.get("models") or SEED_MODELS):
            continue
        kind = next(k for k in ("flag", "env", "launcher") if k in entry)
        for mode in entry.get("modes") or MODES:
            key = (
                mode,
                kind,
                str(entry[kind]),
                _value(entry, "seed", model),
                _value(entry, "collection", model),
            )
            assert key not in out, f"{WHERE}: entries {out.get(key)} and {i + 1} overlap"
            out[key] = i + 1
    return out


def _show(diff: Difference) -> str:
    mode, kind, name, seed, ours = diff
    return f"{mode} {kind} {name}: seed {seed!r}, collection {ours!r}"


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_seed_models_are_the_profiles_from_the_seed():
    """The eight seed models each have a profile; the others (DeepSeek-R1, rehearsal-tiny) are
    not the seed's and are not compared."""
    shipped = {p.stem for p in (REPO / "models").glob("*.yml")}
    assert set(SEED_MODELS) <= shipped
    assert len(SEED_MODELS) == 8
    assert shipped - set(SEED_MODELS) == {"DeepSeek-R1", "rehearsal-tiny"}


def test_inventory_derives_the_seeds_rdma_devices_and_no_hca_in_the_socket_interface():
    """On a host of the seed's cluster, the example inventory's defaults derive the seed's own
    IBDEVICES (MAD_SPEC.md 4.3) and a socket interface without HCA names."""
    ivars = inventory_vars()
    derived = launch_settings(ivars, "prefill-1")
    assert derived["ib_device_arg"] == SEED_HCAS
    assert derived["env"]["NCCL_SOCKET_IFNAME"] == SEED_HOST_DEFAULT_IFNAME
    assert derived["env"]["GLOO_SOCKET_IFNAME"] == SEED_HOST_DEFAULT_IFNAME


@pytest.mark.parametrize("model", SEED_MODELS)
def test_command_lines_match_the_seed_or_the_listed_differences(model):
    profile = _yaml(REPO / "models" / f"{model}.yml")
    assert profile["name"] == model
    found: set[Difference] = set()
    for mode in MODES:
        found |= differences(model, mode, profile)
    want = expected(model)
    unlisted = sorted(found - set(want), key=str)
    stale = sorted(set(want) - found, key=str)
    problems = [f"not listed in models/README.md: {_show(d)}" for d in unlisted]
    problems += [f"stale (entry {want[d]} no longer occurs): {_show(d)}" for d in stale]
    assert not problems, f"{model}:\n" + "\n".join(problems)


def test_every_listed_difference_occurs_somewhere():
    """An entry naming no (model, mode) where it occurs is stale as a whole."""
    used: set[int] = set()
    for model in SEED_MODELS:
        profile = _yaml(REPO / "models" / f"{model}.yml")
        found: set[Difference] = set()
        for mode in MODES:
            found |= differences(model, mode, profile)
        used |= {i for d, i in expected(model).items() if d in found}
    unused = set(range(1, len(listed()) + 1)) - used
    assert not unused, f"{WHERE}: entries {sorted(unused)} match nothing"


def test_the_comparison_catches_a_changed_flag_and_a_stale_entry():
    """A profile change shows as an unlisted difference; the entry it replaces goes stale."""
    model = "Qwen3-32B"
    profile = _yaml(REPO / "models" / f"{model}.yml")
    profile["decode"]["tp"] = 4
    del profile["decode"]["attention_backend"]
    found = differences(model, "decode", profile)
    assert ("decode", "flag", "--tp-size", "8", "4") in found
    want = expected(model)
    assert ("decode", "flag", "--tp-size", "8", "4") not in want
    gone = ("decode", "flag", "--attention-backend", None, "aiter")
    assert gone in want and gone not in found
