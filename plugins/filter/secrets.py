# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters for secret environment values; the pattern lives in module_utils/_secrets.py.

``secret_env_names`` decides the ``no_log`` of every task that hands a container its
environment (a deploy without secrets keeps its full output); ``redact_env`` and
``redact_secrets`` build what may be shown.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils import _secrets


def _names(extra: Any, who: str) -> list:
    if extra is None:
        return []
    if isinstance(extra, str) or not isinstance(extra, (list, tuple)):
        raise AnsibleFilterError(f"{who}: the extra names must be a list (disagg_secret_env_names)")
    return [str(n) for n in extra]


def _env(env: Any, who: str) -> dict:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise AnsibleFilterError(f"{who}: input must be an environment mapping (a dict)")
    return env


def secret_env_names(env: Any, extra_names: Any = None) -> list:
    """``{{ env | inferops.disagg.secret_env_names(disagg_secret_env_names) }}``: the names of
    ``env`` whose values are secrets, sorted."""
    return _secrets.secret_names(_env(env, "secret_env_names"),
                                 _names(extra_names, "secret_env_names"))


def redact_env(env: Any, extra_names: Any = None) -> dict:
    """``{{ env | inferops.disagg.redact_env(disagg_secret_env_names) }}``: ``env`` with every
    secret value replaced by ``***``."""
    return _secrets.redact_env(_env(env, "redact_env"), _names(extra_names, "redact_env"))


def redact_secrets(text: Any, env: Any, extra_names: Any = None) -> str:
    """``{{ msg | inferops.disagg.redact_secrets(env, disagg_secret_env_names) }}``: ``text`` with
    every secret value of ``env`` replaced by ``***``."""
    return _secrets.redact_text("" if text is None else text, _env(env, "redact_secrets"),
                                _names(extra_names, "redact_secrets"))


class FilterModule:
    """Secret filters."""

    def filters(self) -> dict:
        return {"secret_env_names": secret_env_names, "redact_env": redact_env,
                "redact_secrets": redact_secrets}
