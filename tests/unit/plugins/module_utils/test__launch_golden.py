"""Golden launch commands: every model profile x mode, plus a multi-node instance.

Each command is rendered by ``_launch.sglang_worker_args`` (what the sglang_worker role's
``inferops.disagg.sglang_worker_args`` filter calls) from a topology shaped as
roles/sglang_worker/tasks/configure.yml builds it with the collection defaults, then

* compared with tests/golden/launch/<profile>.<mode>.txt (``INFEROPS_UPDATE_GOLDEN=1``
  regenerates; never silently), and
* parsed by SGLang 0.5.2's own ``launch_server`` argument definitions
  (``pd_rehearsal.server_args.sglang_parser``, lifted from the pinned wheel's server_args.py),
  then checked with the GPU-free subset of SGLang's post-parse validations (``parse_args``).
"""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from pd_rehearsal import server_args as sa
from tests.golden._golden import check_golden

REPO = Path(__file__).resolve().parents[4]


def _module_util(name: str) -> ModuleType:
    """Load plugins/module_utils/<name>.py by path (pure modules; no collection loader needed,
    so an Ansible collection finder installed by another test cannot get in the way)."""
    path = REPO / "plugins" / "module_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"inferops_test_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_launch = _module_util("_launch")
_model_profile = _module_util("_model_profile")
MODELS = REPO / "models"
FIXTURE_PROFILES = REPO / "tests" / "golden" / "profiles"
COMMON_DEFAULTS = yaml.safe_load((REPO / "roles/_common/defaults/main.yml").read_text())
LAUNCHER = ["python3", "-m", "sglang.launch_server"]
#: The seed's eight CX-7 HCAs (set_env_vars.sh), as disagg_ib_devices would carry them.
IB_DEVICES = "mlx5_0,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_7,mlx5_8,mlx5_9"
#: Host addresses of the rendered examples: prefill hosts 10.0.0.1x, decode hosts 10.0.0.2x.
ADDRESS = {"prefill": "10.0.0.11", "decode": "10.0.0.21"}
PORT = {
    "prefill": COMMON_DEFAULTS["disagg_prefill_port"],
    "decode": COMMON_DEFAULTS["disagg_decode_port"],
}


def profiles() -> list[Path]:
    return sorted(MODELS.glob("*.yml"))


def load(path: Path) -> dict:
    profile = yaml.safe_load(path.read_text())
    assert _model_profile.profile_errors(profile, str(path)) == []
    return profile


def topology(profile: dict, mode: str, node_rank: int = 0, host: str | None = None) -> dict:
    """The topology configure.yml builds for a host of ``mode`` with the collection defaults."""
    settings = profile[mode]
    return {
        "mode": mode,
        "model_path": f"{COMMON_DEFAULTS['disagg_model_root']}/{profile['name']}",
        "served_model_name": profile["name"],
        "host": host or ADDRESS[mode],
        "port": PORT[mode],
        "transfer_backend": COMMON_DEFAULTS["disagg_transfer_backend"],
        "bootstrap_port": COMMON_DEFAULTS["disagg_bootstrap_port"],
        "ib_devices": IB_DEVICES,
        "nnodes": settings.get("nnodes") or 1,
        "node_rank": node_rank,
        "dist_init_addr": f"{ADDRESS[mode]}:{COMMON_DEFAULTS['disagg_dist_init_port']}",
        "extra_args": [],
    }


def render(profile: dict, mode: str, **kw: object) -> tuple[list[str], dict[str, str]]:
    args = _launch.sglang_worker_args(topology(profile, mode, **kw), profile[mode])
    env = _launch.merge_env(COMMON_DEFAULTS["disagg_container_env"], profile[mode].get("env"))
    return args, env


def golden_text(title: str, args: list[str], env: dict[str, str]) -> str:
    """One ``--flag value...`` per line, after the container's environment, shell-quoted."""
    lines = [
        f"# {title}",
        "# rendered by plugins/module_utils/_launch.py; regenerate: INFEROPS_UPDATE_GOLDEN=1",
    ]
    lines += [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    groups: list[list[str]] = [LAUNCHER[:]]
    for arg in args:
        if arg.startswith("--"):
            groups.append([arg])
        else:
            groups[-1].append(arg)
    body = [shlex.join(groups[0])] + ["  " + shlex.join(g) for g in groups[1:]]
    lines += [line + " \\" for line in body[:-1]] + [body[-1]]
    return "\n".join(lines) + "\n"


def sglang_accepts(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """SGLang 0.5.2's own parser takes ``args`` as given, then its validations pass."""
    monkeypatch.delenv("SGLANG_IS_IN_CI", raising=False)  # would relax a decode-side check
    parser = sa.sglang_parser()
    parsed, unknown = parser.parse_known_args(args)
    assert unknown == [], f"SGLang 0.5.2 does not know {unknown}"
    parser.parse_args(args)  # exits (SystemExit 2) on any bad value
    checked = sa.parse_args(args)  # SGLang's post-parse checks (tp/nnodes, dp attention, PD)
    assert checked.model_path == args[args.index("--model-path") + 1]


CASES = [(p, mode) for p in profiles() for mode in ("prefill", "decode")]


@pytest.mark.parametrize(("path", "mode"), CASES, ids=[f"{p.stem}-{m}" for p, m in CASES])
def test_profile_command_golden_and_accepted_by_sglang(path, mode, monkeypatch):
    profile = load(path)
    args, env = render(profile, mode)
    check_golden(f"launch/{path.stem}.{mode}.txt", golden_text(f"{path.name} {mode}", args, env))
    sglang_accepts(args, monkeypatch)
    parsed = sa.parse_args(args)  # SGLang's parse + its aliases (tp_size from --tp-size ...)
    settings = profile[mode]
    assert parsed.disaggregation_mode == mode
    assert parsed.tp_size == settings["tp"]
    assert parsed.dp_size == (settings.get("dp") or 1)
    assert parsed.ep_size == (settings.get("ep") or 1)
    assert parsed.enable_dp_attention is bool(settings.get("dp_attention"))
    assert parsed.kv_cache_dtype == (settings.get("kv_cache_dtype") or "auto")
    assert parsed.attention_backend == settings.get("attention_backend")
    assert parsed.disaggregation_bootstrap_port == COMMON_DEFAULTS["disagg_bootstrap_port"]
    assert parsed.disaggregation_ib_device == IB_DEVICES


def test_every_seed_model_has_a_profile():
    """The seed's model lists (MAD_SPEC.md section 1, E1 and E2 slurm) all resolve to a file."""
    seed = {
        "Llama-3.1-8B-Instruct", "Llama-3.1-405B-Instruct-FP8-KV",
        "amd-Llama-3.3-70B-Instruct-FP8-KV", "Qwen3-32B", "DeepSeek-V3", "DeepSeek-R1",
        "Mixtral-8x7B-v0.1", "Mixtral-8x7B-Instruct-v0.1", "Qwen3-30B-A3B",
    }  # fmt: skip
    names = {load(p)["name"] for p in profiles()}
    assert seed <= names, f"no profile for {sorted(seed - names)}"
    for path in profiles():
        assert load(path)["name"] == path.stem, "the file name is the profile name"


def test_prefill_and_decode_agree_on_kv_layout():
    """What sglang_worker/tasks/check.yml enforces, for every shipped profile."""
    for path in profiles():
        profile = load(path)
        assert _launch.kv_layout(profile["prefill"]) == _launch.kv_layout(profile["decode"]), path


@pytest.mark.parametrize("node_rank", [0, 1])
def test_multinode_decode_golden_and_accepted_by_sglang(node_rank, monkeypatch):
    """A decode instance over two nodes: both ranks point at rank 0's --dist-init-addr."""
    path = FIXTURE_PROFILES / "DeepSeek-R1-1P2D.yml"
    profile = load(path)
    host = ["10.0.0.21", "10.0.0.22"][node_rank]
    args, env = render(profile, "decode", node_rank=node_rank, host=host)
    title = f"{path.name} decode, instance of 2 nodes (decode-1, decode-2), rank {node_rank}"
    rel = f"launch/multinode/DeepSeek-R1-1P2D.decode.rank{node_rank}.txt"
    check_golden(rel, golden_text(title, args, env))
    sglang_accepts(args, monkeypatch)
    parsed = sa.parse_args(args)
    assert (parsed.nnodes, parsed.node_rank) == (2, node_rank)
    assert parsed.dist_init_addr == "10.0.0.21:5757"  # rank 0's address on every rank
    assert (parsed.tp_size, parsed.dp_size, parsed.ep_size) == (16, 16, 16)
    # The prefill side of the same fixture stays single-node and agrees on the KV layout.
    assert _launch.kv_layout(profile["prefill"]) == _launch.kv_layout(profile["decode"])
    prefill_args, _env = render(profile, "prefill")
    sglang_accepts(prefill_args, monkeypatch)
    assert "--nnodes" not in prefill_args


def test_golden_files_are_never_rewritten_silently(tmp_path, monkeypatch):
    from tests.golden import _golden

    monkeypatch.setattr(_golden, "GOLDEN", tmp_path)
    monkeypatch.delenv(_golden.UPDATE_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="missing"):
        _golden.check_golden("x.txt", "new\n")
    assert not (tmp_path / "x.txt").exists()
    (tmp_path / "x.txt").write_text("old\n")
    with pytest.raises(pytest.fail.Exception, match="-old"):
        _golden.check_golden("x.txt", "new\n")
    assert (tmp_path / "x.txt").read_text() == "old\n"
    monkeypatch.setenv(_golden.UPDATE_ENV, "1")
    _golden.check_golden("x.txt", "new\n")
    assert (tmp_path / "x.txt").read_text() == "new\n"
