#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_wait
short_description: Wait for a container's HTTP endpoint; fail fast if the container stops
version_added: 0.1.0
description:
  - Polls O(url) until it answers with one of O(status_code), for at most O(wait_timeout) seconds.
  - Between probes it inspects container O(name) on the target's Docker daemon. A container that
    is missing, has exited or is restarting ends the wait at once instead of waiting out
    O(wait_timeout).
  - O(timeout) is community.docker's timeout of each Docker API call (default 60 s), not the
    wait budget.
  - When the endpoint does not get healthy it returns the container's last O(log_lines) log
    lines, so the caller can show why. It does not fail itself; check RV(healthy).
  - Never changes anything.
author:
  - inferops.disagg team (!UNKNOWN)
options:
  name:
    description: Container name or ID.
    type: str
    required: true
  url:
    description: URL to probe with GET, as seen from the target host.
    type: str
    required: true
  wait_timeout:
    description:
      - Seconds to wait in total before giving up (the wait budget, e.g. a model load).
      - Distinct from O(timeout), the Docker API timeout of each call to the daemon.
    type: int
    required: true
  interval:
    description: Seconds between probes.
    type: float
    default: 2.0
  probe_timeout:
    description: Seconds one probe may take.
    type: float
    default: 5.0
  status_code:
    description: HTTP status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  log_lines:
    description: How many of the container's last log lines to return when it is not healthy.
    type: int
    default: 40
extends_documentation_fragment:
  - community.docker.docker.api_documentation
  - inferops.disagg._attributes
  - inferops.disagg._attributes.read_only
  - inferops.disagg._attributes.platform
attributes:
  platform:
    platforms: posix
requirements:
  - requests
"""

EXAMPLES = r"""
- name: Wait for the prefill worker's /health
  inferops.disagg.container_wait:
    name: pd-prefill-node1
    url: http://10.0.0.5:30001/health
    wait_timeout: 1800
  register: __wait

- name: Fail with its last log lines
  ansible.builtin.fail:
    msg: "{{ __wait.msg }}: {{ __wait.log_tail | join('\n') }}"
  when: not __wait.healthy
"""

RETURN = r"""
healthy:
  description: Whether O(url) answered with an accepted status within O(wait_timeout).
  type: bool
  returned: always
reason:
  description: C(healthy), C(timeout), C(exited) or C(missing).
  type: str
  returned: always
elapsed:
  description: Seconds spent waiting.
  type: float
  returned: always
last_probe:
  description: The last probe's HTTP status, or the connection error.
  type: str
  returned: always
  sample: "503"
state:
  description: The container's state at the end (status, exit_code, restart_count, ...).
  type: dict
  returned: when the container exists
log_tail:
  description: The container's last O(log_lines) log lines.
  type: list
  elements: str
  returned: when not healthy and the container exists
"""

import time
import traceback
from typing import Any

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible_collections.inferops.disagg.plugins.module_utils._container import (
    container_logs,
    container_state,
    describe_exit,
)
from ansible_collections.inferops.disagg.plugins.module_utils._docker_api import (
    DockerException,
    RequestException,
    docker_client,
)


def probe(url: str, timeout: float) -> str:
    """Return the HTTP status of GET url as a string, or the connection error's text."""
    try:
        return str(open_url(url, method="GET", timeout=timeout).getcode())
    except Exception as exc:  # noqa: BLE001 - HTTPError carries a status; the rest is the reason
        code = getattr(exc, "code", None)
        return str(code) if code is not None else to_native(getattr(exc, "reason", exc))


def wait(client: Any, p: dict) -> dict:
    """Probe until healthy, gone or out of time; return the module result."""
    accepted = {str(c) for c in p["status_code"]}
    started = time.monotonic()
    deadline = started + max(0, p["wait_timeout"])
    last = "not probed"
    while True:
        state = container_state(client, p["name"])
        if state is None:
            reason = "missing"
            break
        if not state["running"] or state["restarting"]:
            reason = "exited"
            break
        last = probe(p["url"], min(p["probe_timeout"], max(0.5, deadline - time.monotonic())))
        if last in accepted:
            reason = "healthy"
            break
        if time.monotonic() >= deadline:
            reason = "timeout"
            break
        time.sleep(max(0.0, min(p["interval"], deadline - time.monotonic())))
    elapsed = round(time.monotonic() - started, 1)
    result = {
        "changed": False,
        "healthy": reason == "healthy",
        "reason": reason,
        "elapsed": elapsed,
        "last_probe": last,
    }
    if state is None:
        result["msg"] = f"container {p['name']} does not exist"
        return result
    result["state"] = state
    if reason == "healthy":
        result["msg"] = f"{p['url']} answered {last} after {elapsed}s"
        return result
    if reason == "exited":
        result["msg"] = f"container {p['name']} {describe_exit(state)} after {elapsed}s"
    else:
        result["msg"] = (
            f"{p['url']} did not answer {'/'.join(sorted(accepted))} within "
            f"{p['wait_timeout']}s (last probe: {last})"
        )
    text = container_logs(client, p["name"], p["log_lines"], state["tty"])
    result["log_tail"] = text.splitlines()[-p["log_lines"] :] if p["log_lines"] > 0 else []
    return result


def main() -> None:
    """Run the module."""
    argument_spec = {
        "name": {"type": "str", "required": True},
        "url": {"type": "str", "required": True},
        "wait_timeout": {"type": "int", "required": True},
        "interval": {"type": "float", "default": 2.0},
        "probe_timeout": {"type": "float", "default": 5.0},
        "status_code": {"type": "list", "elements": "int", "default": [200]},
        "log_lines": {"type": "int", "default": 40},
    }
    client = docker_client(argument_spec)
    p = client.module.params
    try:
        client.module.exit_json(**wait(client, p))
    except (DockerException, RequestException) as exc:
        client.fail(
            f"Docker error while waiting for {p['name']}: {to_native(exc)}",
            exception=traceback.format_exc(),
        )


if __name__ == "__main__":
    main()
