# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: read a container's state and log through community.docker's
Docker API client (the connection options of every community.docker module; only ``requests``
is needed on the target). Read-only. The client's internals are reached only through
``_docker_api``."""

from __future__ import annotations

from typing import Any

from ansible_collections.inferops.disagg.plugins.module_utils._docker_api import (
    inspect_container,
    read_logs,
)


def container_state(client: Any, name: str) -> dict | None:
    """Return a short description of container ``name``, or None when it does not exist."""
    info = inspect_container(client, name)
    return None if info is None else state_of(info)


def state_of(info: dict) -> dict:
    """A short description of the container of a ``docker inspect`` document."""
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
    return read_logs(client, name, tail, tty)


def describe_exit(state: dict) -> str:
    """Return e.g. "exited with code 137 (OOM killed)" for a container that is not running."""
    text = f"{state['status']} with code {state['exit_code']}"
    if state["oom_killed"]:
        text += " (OOM killed)"
    if state["error"]:
        text += ": " + state["error"]
    return text
