# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters of the fault drill's report (playbooks/drill.yml); the logic is module_utils/_drill."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils import _drill


def drill_summary(log_text: str, marks: Mapping[str, Any], drill: str = "",
                  target: str = "", source: str = "<log>") -> dict[str, Any]:
    """``{{ lookup('file', log) | inferops.disagg.drill_summary(marks, drill, target) }}``."""
    try:
        return _drill.summarize(_drill.parse_log(log_text, source), marks, drill, target)
    except _drill.DrillError as exc:
        raise AnsibleFilterError(str(exc)) from None


def drill_markdown(summary: Mapping[str, Any], router_workers: Any = None,
                   log_tail: Iterable[str] = ()) -> str:
    """``{{ summary | inferops.disagg.drill_markdown(router_workers, log_tail) }}``."""
    return _drill.markdown(summary, router_workers, log_tail)


class FilterModule:
    """The drill filters."""

    def filters(self) -> dict:
        """Filter name -> function."""
        return {"drill_summary": drill_summary, "drill_markdown": drill_markdown}
