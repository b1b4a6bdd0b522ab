#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_logs
short_description: Read a container's log, state and (secrets redacted) docker inspect
version_added: 0.1.0
description:
  - Returns the log (stdout and stderr, as C(docker logs) shows it) and a short state of a
    container on the target's Docker daemon (json-file, local and journald logging).
  - With O(inspect), also its C(docker inspect) document, in which the value of every secret
    environment variable (a name containing TOKEN, SECRET, KEY, PASSWORD or CREDENTIAL, any case,
    or matching O(secret_env_names)) is replaced by C(***), in C(Config.Env) and wherever else
    it occurs. The secret never leaves the host (docs/secrets.md).
  - Never changes anything.
author:
  - inferops.disagg team (!UNKNOWN)
options:
  name:
    description: Container name or ID.
    type: str
    required: true
  tail:
    description: Number of lines from the end of the log, or C(all); C(0) reads no log.
    type: str
    default: all
  inspect:
    description: Also return the container's C(docker inspect) document, secrets redacted.
    type: bool
    default: false
  secret_env_names:
    description: More names (or shell-style patterns such as C(HF_*), any case) of environment
      variables whose values are secrets; pass C(disagg_secret_env_names).
    type: list
    elements: str
    default: []
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

- name: Read a worker's docker inspect, secrets redacted, and no log
  inferops.disagg.container_logs:
    name: pd-prefill-prefill-1
    tail: "0"
    inspect: true
    secret_env_names: "{{ disagg_secret_env_names }}"
  register: __worker_inspect
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
container:
  description:
    - The container's C(docker inspect) document (as community.docker.docker_container_info
      returns it), with every secret value replaced by C(***).
  type: dict
  returned: when O(inspect) is true and the container exists
redacted:
  description: The names of C(Config.Env) whose values were replaced by C(***), sorted.
  type: list
  elements: str
  returned: when O(inspect) is true and the container exists
"""

import traceback
from typing import Any

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.inferops.disagg.plugins.module_utils._container import (
    container_logs,
    state_of,
)
from ansible_collections.inferops.disagg.plugins.module_utils._docker_api import (
    DockerException,
    RequestException,
    docker_client,
    inspect_container,
)
from ansible_collections.inferops.disagg.plugins.module_utils._secrets import (
    redact_inspect,
    secret_names,
)


def read(client: Any, p: dict) -> dict:
    """The module result for params ``p``: exists, logs, state, and with ``inspect`` the
    redacted docker inspect (``container``) and the names it redacted."""
    info = inspect_container(client, p["name"])
    if info is None:
        return {"changed": False, "exists": False, "logs": ""}
    state = state_of(info)
    tail = str(p["tail"]).strip()
    logs = "" if tail == "0" else container_logs(client, p["name"], tail, state["tty"])
    result = {"changed": False, "exists": True, "logs": logs, "state": state}
    if p.get("inspect"):
        extra = p.get("secret_env_names") or []
        env = {e.split("=", 1)[0]: "" for e in ((info.get("Config") or {}).get("Env") or [])
               if isinstance(e, str)}
        result["container"] = redact_inspect(info, extra)
        result["redacted"] = secret_names(env, extra)
    return result


def main() -> None:
    """Run the module."""
    argument_spec = {
        "name": {"type": "str", "required": True},
        "tail": {"type": "str", "default": "all"},
        "inspect": {"type": "bool", "default": False},
        # Names, not values: nothing secret (no_log False says so to validate-modules).
        "secret_env_names": {"type": "list", "elements": "str", "default": [], "no_log": False},
    }
    client = docker_client(argument_spec)
    p = client.module.params
    try:
        client.module.exit_json(**read(client, p))
    except (DockerException, RequestException) as exc:
        client.fail(
            f"Error reading the log of {p['name']}: {to_native(exc)}",
            exception=traceback.format_exc(),
        )


if __name__ == "__main__":
    main()
