# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: the ONE place that touches community.docker's Docker API client.

community.docker's ``module_utils._api`` package and the underscore methods of its API client are
private to that collection: a minor release may move or change them. Every use of them in this
collection goes through this file, and ``CONTRACT`` lists exactly what is used (names, and the
parameters of what is called), so that ``tests/unit/plugins/module_utils/test__docker_api.py``
fails naming the changed name when a community.docker upgrade breaks it.

What the modules get: :func:`docker_client` (an ``AnsibleDockerClient``: the module plus the
connection options of every community.docker module, ``docker_host``, ``tls``, ``timeout``...),
``DockerException`` and ``RequestException`` to catch, :func:`inspect_container` and
:func:`read_logs`.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.community.docker.plugins.module_utils._api.errors import (
    DockerException,
    NotFound,
)
from ansible_collections.community.docker.plugins.module_utils.common_api import (
    AnsibleDockerClient,
    RequestException,
)

__all__ = ["DockerException", "NotFound", "RequestException", "docker_client",
           "inspect_container", "read_logs"]

# module -> name -> parameters we pass (None: not called, e.g. an exception class we catch).
CONTRACT: dict[str, dict[str, tuple[str, ...] | None]] = {
    "ansible_collections.community.docker.plugins.module_utils._api.errors": {
        "DockerException": None,
        "NotFound": None,
    },
    "ansible_collections.community.docker.plugins.module_utils.common_api": {
        "RequestException": None,
        "AnsibleDockerClient": ("argument_spec", "supports_check_mode"),
        "AnsibleDockerClient.fail": ("msg", "exception"),
        "AnsibleDockerClient.get_json": ("pathfmt", "*args"),
        "AnsibleDockerClient._url": ("pathfmt", "*args"),
        "AnsibleDockerClient._get": ("url", "params"),
        "AnsibleDockerClient._get_result_tty": ("stream", "res", "is_tty"),
    },
}
# The instance attribute of AnsibleDockerClient the modules use (set in its __init__).
CLIENT_ATTRIBUTES = ("module",)


def docker_client(argument_spec: dict) -> AnsibleDockerClient:
    """A Docker API client whose ``.module`` takes ``argument_spec`` plus community.docker's
    connection options (check mode supported; the modules only read)."""
    return AnsibleDockerClient(argument_spec=argument_spec, supports_check_mode=True)


def inspect_container(client: Any, name: str) -> dict | None:
    """``GET /containers/{name}/json``, or None when the container does not exist."""
    try:
        return client.get_json("/containers/{0}/json", name)
    except NotFound:
        return None


def read_logs(client: Any, name: str, tail: str | int, tty: bool) -> str:
    """stdout and stderr of container ``name`` (``tail``: a line count or "all") as text, as
    ``docker logs`` shows it (``tty``: whether the container has a TTY, so one unframed stream)."""
    params = {"stdout": 1, "stderr": 1, "timestamps": 0, "follow": 0, "tail": str(tail)}
    res = client._get(client._url("/containers/{0}/logs", name), params=params)
    raw = client._get_result_tty(False, res, tty)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw
