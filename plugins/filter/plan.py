# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters of the deploy plan; the logic lives in module_utils/_plan.py."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils import _plan


def plan_container(spec: Any, before: Any, result: Any, check_mode: Any = False,
                   secret_env_names: Any = None) -> dict:
    """``{{ spec | inferops.disagg.plan_container(info_before, docker_container_result,
    ansible_check_mode, disagg_secret_env_names) }}``: the container's plan entry (spec, action,
    reason, report), secret env values as ``***``."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("plan_container: input must be the container spec (a dict)")
    for name, value in (("before", before), ("result", result)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError(f"plan_container: {name} must be a registered result (dict)")
    if secret_env_names is not None and not isinstance(secret_env_names, (list, tuple)):
        raise AnsibleFilterError("plan_container: secret_env_names must be a list of names")
    return _plan.container_entry(spec, before, result, bool(check_mode), secret_env_names)


class FilterModule:
    """Deploy plan filters."""

    def filters(self) -> dict:
        return {"plan_container": plan_container}
