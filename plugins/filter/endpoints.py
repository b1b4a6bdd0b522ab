# Copyright: (c) 2026, inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filter ``inferops.disagg.endpoints``: every endpoint of the deployment, from the inventory
(the logic is plugins/module_utils/disagg_endpoints/, which pdctl uses too)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils.disagg_endpoints import (
    EndpointError,
    compute_endpoints,
)


def endpoints(groups: Mapping[str, Any], hostvars: Mapping[str, Any],
              settings: Mapping[str, Any] | None = None,
              profile: Mapping[str, Any] | None = None,
              leaving: Sequence[str] | None = None) -> dict[str, Any]:
    """``groups | inferops.disagg.endpoints(hostvars, settings, profile, leaving)``.

    ``leaving``: the hosts being removed (``disagg_remove_hosts``); see ``compute_endpoints``.
    """
    hosts = {h for g in ("proxy", "prefill", "decode") for h in (groups.get(g) or [])}
    own = {h: hostvars[h] for h in hosts if h in hostvars}
    try:
        return compute_endpoints(groups, own, settings or {}, profile or {}, list(leaving or []))
    except EndpointError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """The endpoints filter."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        """Filter name -> function."""
        return {"endpoints": endpoints}
