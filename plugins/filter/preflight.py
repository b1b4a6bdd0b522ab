# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters that turn preflight fact-module results into findings, lines and a Markdown table,
and the KV path probe's outputs into per-pair results."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.inferops.disagg.plugins.module_utils._preflight import (
    evaluate,
    markdown,
    render,
)
from ansible_collections.inferops.disagg.plugins.module_utils._preflight_kv import (
    ib_write_bw_result,
    kv_pair_list,
    kv_pairs,
    kv_targets,
)


def preflight_findings(results: dict, host: str, thresholds: dict | None = None) -> list[dict]:
    """``{{ results | inferops.disagg.preflight_findings(inventory_hostname, thresholds) }}``."""
    if not isinstance(results, dict):
        raise AnsibleFilterError("preflight_findings: input must be a dict of module results")
    try:
        return evaluate(str(host), dict(results), dict(thresholds or {}))
    except ValueError as exc:
        raise AnsibleFilterError(f"preflight_findings: {exc}") from exc


def preflight_lines(findings: list[dict]) -> list[str]:
    """One ``HOST: CHECK: found X, expected Y; fix: Z`` line per finding."""
    return [render(f) for f in findings or []]


def preflight_markdown(findings_by_host: dict, title: str = "Preflight",
                       kv_path: list | None = None) -> str:
    """A Markdown table of the findings of every host (hosts without findings show as fit),
    then the KV path pairs when given."""
    if not isinstance(findings_by_host, dict):
        raise AnsibleFilterError("preflight_markdown: input must map hosts to finding lists")
    return markdown({str(k): list(v or []) for k, v in findings_by_host.items()}, title,
                    list(kv_path or []))


def preflight_kv_targets(host: str, senders: list, receivers: list,
                         mode: str = "auto") -> list[str]:
    """The receivers ``host`` sends the KV probe to (``all``, ``cover`` or ``auto`` pairs)."""
    try:
        return kv_targets([str(h) for h in senders or []], [str(h) for h in receivers or []],
                          str(host), str(mode))
    except ValueError as exc:
        raise AnsibleFilterError(
            f"preflight_kv_targets: {exc}. Fix: set preflight_kv_probe_pairs to all, cover or "
            "auto") from exc


def preflight_kv_pair_list(senders: list, receivers: list,
                           mode: str = "auto") -> list[list[str]]:
    """Every ``[sender, receiver]`` pair of the KV probe (``all``, ``cover`` or ``auto``)."""
    try:
        return kv_pair_list([str(h) for h in senders or []], [str(h) for h in receivers or []],
                            str(mode))
    except ValueError as exc:
        raise AnsibleFilterError(
            f"preflight_kv_pair_list: {exc}. Fix: set preflight_kv_probe_pairs to all, cover or "
            "auto") from exc


def preflight_kv_pairs(send_results: list, sender: str, receivers: dict,
                       ib: dict | None = None, settings: dict | None = None) -> list[dict]:
    """One result per ``sender->receiver`` pair of the KV probe (see ``kv_path.yml``)."""
    if not isinstance(receivers, dict):
        raise AnsibleFilterError("preflight_kv_pairs: receivers must map hosts to their state")
    return kv_pairs(list(send_results or []), str(sender), dict(receivers), dict(ib or {}),
                    dict(settings or {}))


def preflight_ib_write_bw(client: dict, server: dict | None = None, note: str = "") -> dict:
    """``{status, gbps, note}`` of one ib_write_bw pair from its command results."""
    return ib_write_bw_result(client, server, note)


class FilterModule:
    """Preflight filters."""

    def filters(self) -> dict:
        return {
            "preflight_findings": preflight_findings,
            "preflight_lines": preflight_lines,
            "preflight_markdown": preflight_markdown,
            "preflight_kv_pairs": preflight_kv_pairs,
            "preflight_kv_targets": preflight_kv_targets,
            "preflight_kv_pair_list": preflight_kv_pair_list,
            "preflight_ib_write_bw": preflight_ib_write_bw,
        }
