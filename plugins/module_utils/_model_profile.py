# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: the schema of model profiles (``models/<name>.yml``).

The schema is documented in models/README.md; keep the two in step. ``profile_errors`` returns
one message per problem, each naming the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ansible_collections.inferops.disagg.plugins.module_utils._image_labels import spec_error

SCHEMA_VERSION = 1
TOP_FIELDS = ("schema", "name", "description", "hf_repo", "requires", "prefill", "decode")
MODES = ("prefill", "decode")


#: SGLang 0.5.2's choices for the settings that take one (``--kv-cache-dtype``,
#: ``--attention-backend``, ``--quantization``); tests/unit compares them with SGLang's parser.
KV_CACHE_DTYPES = ("auto", "fp8_e5m2", "fp8_e4m3")
ATTENTION_BACKENDS = (
    "triton", "torch_native", "cutlass_mla", "fa3", "flashinfer", "flashmla", "trtllm_mla",
    "trtllm_mha", "dual_chunk_flash_attn", "hybrid_linear_attn", "aiter", "wave", "intel_amx",
    "ascend",
)  # fmt: skip
QUANTIZATIONS = (
    "awq", "fp8", "gptq", "marlin", "gptq_marlin", "awq_marlin", "bitsandbytes", "gguf",
    "modelopt", "modelopt_fp4", "petit_nvfp4", "w8a8_int8", "w8a8_fp8", "moe_wna16", "qoq",
    "w4afp8", "mxfp4",
)  # fmt: skip
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPONENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _choice(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in choices


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1


def _chunk(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v >= 1)


def _text(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _scalar(v: Any) -> bool:
    """A string or a number (what an env value or a command-line argument may be)."""
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


#: Per-mode fields: name -> (check, what the value must be, required).
MODE_FIELDS: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "tp": (_pos_int, "an integer >= 1", True),
    "dp": (_pos_int, "an integer >= 1", False),
    "ep": (_pos_int, "an integer >= 1", False),
    "nnodes": (_pos_int, "an integer >= 1 (the nodes one instance spans)", False),
    "dp_attention": (lambda v: isinstance(v, bool), "true or false", False),
    "mem_fraction_static": (_fraction, "a number in (0, 1]", False),
    "chunked_prefill_size": (_chunk, "-1 (off) or an integer >= 1", False),
    "max_running_requests": (_pos_int, "an integer >= 1", False),
    "attention_backend": (
        _choice(ATTENTION_BACKENDS),
        f"one of SGLang 0.5.2's --attention-backend choices ({', '.join(ATTENTION_BACKENDS)})",
        False,
    ),
    "kv_cache_dtype": (
        _choice(KV_CACHE_DTYPES),
        f"one of SGLang 0.5.2's --kv-cache-dtype choices ({', '.join(KV_CACHE_DTYPES)})",
        False,
    ),
    "quantization": (
        _choice(QUANTIZATIONS),
        f"one of SGLang 0.5.2's --quantization choices ({', '.join(QUANTIZATIONS)})",
        False,
    ),
    "env": (lambda v: isinstance(v, dict), "a mapping of NAME: value", False),
    "extra_args": (lambda v: isinstance(v, list), "a list of strings", False),
}


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _mode_errors(mode: str, section: dict) -> list[tuple[str, str]]:
    """(field, problem) pairs of one mode section."""
    out: list[tuple[str, str]] = []
    for key in sorted(set(section) - set(MODE_FIELDS)):
        out.append((f"{mode}.{key}", f"unknown field; known fields: {', '.join(MODE_FIELDS)}"))
    for key, (check, want, required) in MODE_FIELDS.items():
        field = f"{mode}.{key}"
        value = section.get(key)
        if value is None:
            if required:
                out.append((field, f"missing; expected {want}"))
            continue
        if not check(value):
            out.append((field, f"expected {want}, got {_show(value)}"))
        elif key == "env":
            for name, val in value.items():
                if not (isinstance(name, str) and _ENV_NAME.fullmatch(name)):
                    out.append(
                        (
                            f"{field}.{name}",
                            "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                        )
                    )
                elif not (_scalar(val) or isinstance(val, bool)):
                    out.append(
                        (f"{field}.{name}", f"expected a string, number or bool, got {_show(val)}")
                    )
        elif key == "extra_args":
            for i, arg in enumerate(value):
                if not _scalar(arg):
                    out.append((f"{field}[{i}]", f"expected a string or number, got {_show(arg)}"))
    tp, dp, nnodes = section.get("tp"), section.get("dp") or 1, section.get("nnodes") or 1
    if _pos_int(tp) and _pos_int(nnodes) and tp % nnodes:
        out.append((f"{mode}.nnodes", f"tp ({tp}) must be divisible by nnodes ({nnodes})"))
    if section.get("dp_attention") is True and _pos_int(tp) and _pos_int(dp) and tp % dp:
        out.append((f"{mode}.dp", f"with dp_attention, tp ({tp}) must be divisible by dp ({dp})"))
    if (
        _pos_int(dp)
        and dp > 1
        and _pos_int(nnodes)
        and nnodes > 1
        and not section.get("dp_attention")
    ):
        out.append(
            (f"{mode}.dp", f"dp {dp} over nnodes {nnodes} needs dp_attention: true (SGLang 0.5.2)")
        )
    return out


def _requires_errors(requires: Any) -> list[tuple[str, str]]:
    """(field, problem) pairs of the ``requires`` section: component -> version specifier."""
    if not isinstance(requires, dict):
        return [
            (
                "requires",
                "expected a mapping of image component to version specifier, e.g. "
                f"{{sglang: '>=0.5.2', mooncake: any}}, got {_show(requires)}",
            )
        ]
    out: list[tuple[str, str]] = []
    for name, spec in requires.items():
        if not (isinstance(name, str) and _COMPONENT_NAME.fullmatch(name)):
            out.append(
                (
                    f"requires.{name}",
                    "expected a component name as in the image's io.inferops.component.<name> "
                    "labels (lower case, digits, . _ -)",
                )
            )
            continue
        problem = spec_error(spec)
        if problem is not None:
            out.append((f"requires.{name}", problem))
    return out


def profile_errors(profile: Any, path: str) -> list[str]:
    """Return the problems of ``profile`` (parsed YAML) as ``<path>: <field>: <problem>`` lines."""
    if not isinstance(profile, dict):
        return [f"{path}: expected a mapping at the top level, got {type(profile).__name__}"]
    found: list[tuple[str, str]] = []
    for key in sorted(set(profile) - set(TOP_FIELDS)):
        found.append((key, f"unknown field; known fields: {', '.join(TOP_FIELDS)}"))
    if profile.get("schema") != SCHEMA_VERSION:
        found.append(("schema", f"expected {SCHEMA_VERSION}, got {_show(profile.get('schema'))}"))
    if not _text(profile.get("name")):
        found.append(
            (
                "name",
                "expected the served model name (a non-empty string, also the "
                "model's directory under disagg_model_root), got "
                f"{_show(profile.get('name'))}",
            )
        )
    for key in ("description", "hf_repo"):
        if profile.get(key) is not None and not isinstance(profile[key], str):
            found.append((key, f"expected a string, got {_show(profile[key])}"))
    if profile.get("requires") is not None:
        found += _requires_errors(profile["requires"])
    for mode in MODES:
        section = profile.get(mode)
        if isinstance(section, dict):
            found += _mode_errors(mode, section)
        else:
            found.append(
                (mode, f"expected a mapping of launch settings (at least tp), got {_show(section)}")
            )
    return [f"{path}: {field}: {problem}" for field, problem in found]
