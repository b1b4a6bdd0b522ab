# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: read a container's state and log through community.docker's
Docker API client (the connection options of every community.docker module; only ``requests``
is needed on the target). Read-only."""

from __future__ import annotations

from typing import Any

from ansible_collections.community.docker.plugins.module_utils._api.errors import NotFound


def container_state(client: Any, name: str) -> dict | None:
    """Return a short description of container ``name``, or None when it does not exist."""
    try:
        info = client.get_json("/containers/{0}/json", name)
    except NotFound:
        return None
    state = info.get("State") or {}
    return {
        "id": info.get("Id", "")[:12],
        "name": info.get("Name", "").lstrip("/"),
        "status": state.get("Status", "unknown"),
        "running": bool(state.get("Running")),
        "restarting": bool(state.get("Restarting")),
        "exit_code": state.get("ExitCode"),
        "oom_killed": bool(state.get("OOMKilled")),
        "error": state.get("Error") or "",
        "started_at": state.get("StartedAt", ""),
        "finished_at": state.get("FinishedAt", ""),
        "restart_count": info.get("RestartCount", 0),
        "tty": bool((info.get("Config") or {}).get("Tty")),
    }


def container_logs(client: Any, name: str, tail: str | int, tty: bool = False) -> str:
    """Return the container's stdout and stderr (``tail``: a line count or "all") as text."""
    params = {"stdout": 1, "stderr": 1, "timestamps": 0, "follow": 0, "tail": str(tail)}
    res = client._get(client._url("/containers/{0}/logs", name), params=params)
    raw = client._get_result_tty(False, res, tty)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw


def describe_exit(state: dict) -> str:
    """Return e.g. "exited with code 137 (OOM killed)" for a container that is not running."""
    text = f"{state['status']} with code {state['exit_code']}"
    if state["oom_killed"]:
        text += " (OOM killed)"
    if state["error"]:
        text += ": " + state["error"]
    return text
