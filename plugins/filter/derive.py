# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters of the launch settings each worker derives from its host's facts.

The logic lives in module_utils/_derive.py; these wrap it for the sglang_worker role, the
preflight KV probe and the deploy summary.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils import _derive


def launch_settings(rdma: Any, host: str, settings: dict, default_ifname: Any = None,
                    rdma_error: Any = None) -> dict:
    """``{{ ansible_facts.rdma | inferops.disagg.launch_settings(inventory_hostname, settings,
    ansible_default_ipv4.interface) }}``: the derived values, their sources and ``errors``."""
    if rdma is not None and not isinstance(rdma, dict):
        raise AnsibleFilterError(
            "launch_settings: input must be ansible_facts.rdma (a dict) or null")
    if not isinstance(settings, dict):
        raise AnsibleFilterError("launch_settings: settings must be a dict")
    return _derive.derive(str(host), settings, rdma,
                          str(default_ifname) if default_ifname else None,
                          str(rdma_error) if rdma_error else None)


def launch_settings_mismatches(hosts: list) -> list[str]:
    """``{{ hosts | inferops.disagg.launch_settings_mismatches }}``: [] when roles agree.

    ``hosts``: what launch_settings returned for each host, with ``modes`` added.
    """
    if not isinstance(hosts, list):
        raise AnsibleFilterError(
            "launch_settings_mismatches: input must be a list of derived host settings")
    try:
        return _derive.mismatches(hosts)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"launch_settings_mismatches: missing or bad {exc}") from exc


def launch_settings_line(settings: dict) -> str:
    """``{{ disagg_launch_settings | inferops.disagg.launch_settings_line }}``."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError("launch_settings_line: input must be a dict")
    return _derive.summary_line(settings)


class FilterModule:
    """Derived launch settings filters."""

    def filters(self) -> dict:
        return {
            "launch_settings": launch_settings,
            "launch_settings_mismatches": launch_settings_mismatches,
            "launch_settings_line": launch_settings_line,
        }
