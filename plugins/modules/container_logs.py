#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_logs
short_description: Read a container's log and state
version_added: 0.1.0
description:
  - Returns the log (stdout and stderr, as C(docker logs) shows it) and a short state of a
    container on the target's Docker daemon (json-file, local and journald logging).
  - Never changes anything.
author:
  - inferops.disagg team (!UNKNOWN)
options:
  name:
    description: Container name or ID.
    type: str
    required: true
  tail:
    description: Number of lines from the end of the log, or C(all).
    type: str
    default: all
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
- name: Read the router's log
  inferops.disagg.container_logs:
    name: pd-router-proxy-1
  register: __router_log
"""

RETURN = r"""
exists:
  description: Whether the container exists.
  type: bool
  returned: always
logs:
  description: The log text (empty when the container does not exist).
  type: str
  returned: always
state:
  description: The container's state (status, exit_code, restart_count, ...).
  type: dict
  returned: when the container exists
"""

import traceback

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.inferops.disagg.plugins.module_utils._container import (
    container_logs,
    container_state,
)
from ansible_collections.inferops.disagg.plugins.module_utils._docker_api import (
    DockerException,
    RequestException,
    docker_client,
)


def main() -> None:
    """Run the module."""
    argument_spec = {
        "name": {"type": "str", "required": True},
        "tail": {"type": "str", "default": "all"},
    }
    client = docker_client(argument_spec)
    p = client.module.params
    try:
        state = container_state(client, p["name"])
        if state is None:
            client.module.exit_json(changed=False, exists=False, logs="")
        logs = container_logs(client, p["name"], p["tail"], state["tty"])
        client.module.exit_json(changed=False, exists=True, logs=logs, state=state)
    except (DockerException, RequestException) as exc:
        client.fail(
            f"Error reading the log of {p['name']}: {to_native(exc)}",
            exception=traceback.format_exc(),
        )


if __name__ == "__main__":
    main()
