# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters of the deploy roles: model profile checks and the worker and router command lines.

The logic lives in module_utils (_model_profile, _launch); these wrap it for templates.
"""

from __future__ import annotations

from typing import Any

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils import _launch, _model_profile


def model_profile_errors(profile: Any, path: str) -> list[str]:
    """``{{ profile | inferops.disagg.model_profile_errors(file) }}``: [] when valid."""
    return _model_profile.profile_errors(profile, str(path))


def model_profile_load(text: Any, path: str) -> Any:
    """``{{ lookup('file', f) | inferops.disagg.model_profile_load(f) }}``: the parsed profile;
    a YAML error names the file, the line and the column."""
    try:
        return yaml.safe_load(str(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AnsibleFilterError(
            f"model profile {path}:{where}: not valid YAML ({problem}). Fix: correct the file "
            f"there (yamllint {path} shows every problem)") from None


def sglang_worker_args(topology: dict, settings: dict) -> list[str]:
    """``{{ topology | inferops.disagg.sglang_worker_args(profile[mode]) }}``."""
    try:
        return _launch.sglang_worker_args(topology, settings)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"sglang_worker_args: {exc}") from exc


def sglang_worker_env(*layers: dict) -> dict[str, str]:
    """``{{ base | inferops.disagg.sglang_worker_env(more, ...) }}``: merged, values strings."""
    return _launch.merge_env(*layers)


def sglang_kv_layout(settings: dict) -> dict:
    """``{{ profile[mode] | inferops.disagg.sglang_kv_layout }}``: attention TP, KV dtype."""
    return _launch.kv_layout(settings)


def router_pd_args(settings: dict) -> list[str]:
    """``{{ settings | inferops.disagg.router_pd_args }}``."""
    try:
        return _launch.router_pd_args(settings)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"router_pd_args: missing or bad {exc}") from exc


class FilterModule:
    """Deploy filters."""

    def filters(self) -> dict:
        return {
            "model_profile_errors": model_profile_errors,
            "model_profile_load": model_profile_load,
            "sglang_worker_args": sglang_worker_args,
            "sglang_worker_env": sglang_worker_env,
            "sglang_kv_layout": sglang_kv_layout,
            "router_pd_args": router_pd_args,
        }
