"""The model profile schema: a bad value fails naming the file and the field, before any start."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pd_rehearsal import server_args as sa

REPO = Path(__file__).resolve().parents[4]
_spec = importlib.util.spec_from_file_location(
    "inferops_test__model_profile", REPO / "plugins" / "module_utils" / "_model_profile.py"
)
mp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mp)  # by path: no collection loader involved
GOOD = yaml.safe_load((REPO / "models" / "DeepSeek-R1.yml").read_text())


def _with(mode: str, **changes: object) -> dict:
    profile = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in changes.items():
        if value is None:
            profile[mode].pop(key, None)
        else:
            profile[mode][key] = value
    return profile


def test_choices_are_sglang_052s():
    choices = {a.dest: a.choices for a in sa.sglang_parser()._actions if a.choices}
    assert tuple(choices["kv_cache_dtype"]) == mp.KV_CACHE_DTYPES
    assert tuple(choices["attention_backend"]) == mp.ATTENTION_BACKENDS
    assert tuple(choices["quantization"]) == mp.QUANTIZATIONS


BAD = [
    # mode, change, field, fragment of the message
    ("decode", {"kv_cache_dtype": "fp8"}, "decode.kv_cache_dtype", "--kv-cache-dtype choices"),
    ("prefill", {"attention_backend": "flashattn"}, "prefill.attention_backend", "got 'flashattn'"),
    ("prefill", {"quantization": "fp4"}, "prefill.quantization", "--quantization choices"),
    ("prefill", {"tp": 0}, "prefill.tp", "an integer >= 1, got 0"),
    ("decode", {"tp": None}, "decode.tp", "missing"),
    ("decode", {"mem_fraction_static": 1.5}, "decode.mem_fraction_static", "(0, 1]"),
    ("prefill", {"chunked_prefill_size": 0}, "prefill.chunked_prefill_size", "-1 (off)"),
    ("decode", {"dp": 3}, "decode.dp", "tp (8) must be divisible by dp (3)"),
    ("decode", {"nnodes": 3}, "decode.nnodes", "tp (8) must be divisible by nnodes (3)"),
    ("decode", {"dp_attention": "yes"}, "decode.dp_attention", "true or false"),
    (
        "prefill",
        {"env": {"SGLANG USE AITER": "1"}},
        "prefill.env.SGLANG USE AITER",
        "variable name",
    ),
    (
        "prefill",
        {"env": {"MC_TE_METRIC": ["x"]}},
        "prefill.env.MC_TE_METRIC",
        "string, number or bool",
    ),
    ("prefill", {"extra_args": "--trust-remote-code"}, "prefill.extra_args", "a list of strings"),
    ("decode", {"tp_size": 8}, "decode.tp_size", "unknown field"),
]


@pytest.mark.parametrize(("mode", "change", "field", "fragment"), BAD, ids=[b[2] for b in BAD])
def test_bad_value_names_file_and_field(mode, change, field, fragment):
    errors = mp.profile_errors(_with(mode, **change), "models/x.yml")
    assert any(e.startswith(f"models/x.yml: {field}: ") and fragment in e for e in errors), errors


def test_multinode_dp_needs_dp_attention():
    profile = _with("decode", tp=16, dp=16, nnodes=2, dp_attention=False)
    errors = mp.profile_errors(profile, "p.yml")
    assert "p.yml: decode.dp: dp 16 over nnodes 2 needs dp_attention: true (SGLang 0.5.2)" in errors
    assert mp.profile_errors(_with("decode", tp=16, dp=16, nnodes=2), "p.yml") == []


@pytest.mark.parametrize("path", sorted((REPO / "models").glob("*.yml")), ids=lambda p: p.stem)
def test_shipped_profiles_are_valid(path):
    assert mp.profile_errors(yaml.safe_load(path.read_text()), str(path)) == []


def test_bad_profile_fails_the_playbook_before_anything_starts(tmp_path):
    """validate.yml (imported first by deploy.yml) stops on the profile, naming file and field."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    bad = _with("decode", kv_cache_dtype="fp8")
    (profiles / "my-model.yml").write_text(yaml.safe_dump(bad))
    inventory = tmp_path / "hosts.yml"
    hosts = {"proxy": "p1", "prefill": "pf1", "decode": "d1"}
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        g: {"hosts": {h: {"ansible_connection": "local"}}} for g, h in hosts.items()
                    }
                }
            }
        )
    )
    extra = {"disagg_model_profiles_dir": str(profiles), "disagg_model_profile": "my-model"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
         str(REPO / "playbooks" / "validate.yml"), "-e", json.dumps(extra)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert (
        f"{profiles / 'my-model.yml'}: decode.kv_cache_dtype: expected one of SGLang 0.5.2's" in out
    )
