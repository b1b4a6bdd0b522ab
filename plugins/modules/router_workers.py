#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: router_workers
short_description: Register a worker with a running sglang-router, or take it out, live
version_added: 0.2.0
description:
  - Adds a prefill or decode worker to a running sglang-router 0.3.2 (C(POST /workers)) or
    removes it (C(DELETE /workers/<id>)), without restarting the router, then waits until the
    router's C(GET /workers) listing shows the change.
  - With O(state=present) and O(healthy=true) the wait lasts until the router marks the worker
    healthy, so traffic can reach it when the task returns. A worker newly added gets a fresh
    circuit breaker, so re-adding a restarted worker is how it takes traffic again at once.
  - A worker already registered as wanted is left alone (changed=false). One registered with
    another type or bootstrap port is removed and added again.
  - Supports check mode (reports what it would do) and diff (the listing before and after).
author:
  - inferops.disagg team (!UNKNOWN)
options:
  router_url:
    description: The router's base URL as seen from the target host, e.g. C(http://10.0.0.1:30000).
    type: str
    required: true
  url:
    description: The worker's URL as the router reaches it (the same string the router lists).
    type: str
    required: true
  state:
    description: C(present) to register the worker, C(absent) to take it out.
    type: str
    choices: [present, absent]
    default: present
  worker_type:
    description: C(prefill) or C(decode); required with O(state=present).
    type: str
    choices: [prefill, decode]
  bootstrap_port:
    description: A prefill worker's PD bootstrap port.
    type: int
  healthy:
    description: With O(state=present), also wait until the router marks the worker healthy.
    type: bool
    default: true
  reset:
    description:
      - With O(state=present), remove and add the worker again even when the router lists it as
        wanted, so it gets a fresh circuit breaker and health state (a worker restarted under a
        live router, whose breaker the restart opened).
    type: bool
    default: false
  wait_timeout:
    description: Seconds the router may take to show the change before the task fails.
    type: int
    default: 120
  interval:
    description: Seconds between listings while waiting.
    type: float
    default: 0.5
extends_documentation_fragment:
  - inferops.disagg._attributes
  - inferops.disagg._attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
    details:
      - A second run with the same arguments finds the worker registered (or gone) as wanted and
        changes nothing, except with O(reset=true), which registers it anew every time.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Take prefill-2 out of the router before replacing it
  inferops.disagg.router_workers:
    router_url: http://10.0.0.1:30000
    url: http://10.0.0.12:30001
    state: absent

- name: Put it back; return once the router routes to it
  inferops.disagg.router_workers:
    router_url: http://10.0.0.1:30000
    url: http://10.0.0.12:30001
    worker_type: prefill
    bootstrap_port: 8998
"""

RETURN = r"""
removed:
  description: Router worker IDs removed.
  type: list
  elements: str
  returned: always
added:
  description: Whether the worker was (or in check mode would be) added.
  type: bool
  returned: always
elapsed:
  description: Seconds until the router's listing showed the change.
  type: float
  returned: always
workers:
  description: The router's workers at the end, one line each (type, URL, health, load).
  type: list
  elements: str
  returned: always
  sample: ["prefill http://10.0.0.11:30001 healthy load=0"]
"""

import json
import time
import urllib.parse
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible_collections.inferops.disagg.plugins.module_utils._router_workers import (
    add_body,
    decide,
    describe,
    settled,
)


def call(base: str, method: str, path: str, body: dict | None = None) -> Any:
    """One request to the router; its JSON answer (RuntimeError naming the request otherwise)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        answer = open_url(base.rstrip("/") + path, method=method, data=data, headers=headers,
                          timeout=10)
        text = answer.read()
    except Exception as exc:  # noqa: BLE001 - HTTPError carries the router's message
        detail = exc.read().decode(errors="replace")[:300] if hasattr(exc, "read") else ""
        raise RuntimeError(f"{method} {base}{path}: {to_native(exc)} {detail}".strip()) from exc
    try:
        return json.loads(text) if text else {}
    except ValueError as exc:
        raise RuntimeError(f"{method} {base}{path} did not answer JSON: {text[:200]!r}") from exc


def run(p: dict, check_mode: bool) -> dict:
    """Make the change and wait for it; the module result."""
    base, url = p["router_url"], p["url"].rstrip("/")
    listing = call(base, "GET", "/workers")
    todo = decide(listing, url, p["state"], p["worker_type"] or "", p["bootstrap_port"],
                  reset=p["reset"])
    changed = bool(todo["remove"]) or todo["add"]
    result: dict[str, Any] = {"changed": changed, "removed": todo["remove"], "added": todo["add"],
                              "elapsed": 0.0}
    before = describe(listing)
    if check_mode or not changed:
        if not changed and p["state"] == "present" and p["healthy"]:
            listing = wait(p, base, url)  # registered: still wait until the router says healthy
        result["workers"] = describe(listing)
        return result
    started = time.monotonic()
    for worker_id in todo["remove"]:
        call(base, "DELETE", "/workers/" + urllib.parse.quote(worker_id, safe=""))
    if todo["remove"]:
        wait(p, base, url, state="absent")
    if todo["add"]:
        call(base, "POST", "/workers", add_body(url, p["worker_type"], p["bootstrap_port"]))
    listing = wait(p, base, url)
    result["elapsed"] = round(time.monotonic() - started, 1)
    result["workers"] = describe(listing)
    result["diff"] = {"before": "".join(f"{line}\n" for line in before),
                      "after": "".join(f"{line}\n" for line in result["workers"])}
    return result


def wait(p: dict, base: str, url: str, state: str | None = None) -> Any:
    """Poll ``GET /workers`` until it shows ``url`` in ``state`` (default: the wanted one)."""
    state = state or p["state"]
    deadline = time.monotonic() + max(0, p["wait_timeout"])
    while True:
        listing = call(base, "GET", "/workers")
        if settled(listing, url, state, p["worker_type"] or "", p["bootstrap_port"],
                   p["healthy"]):
            return listing
        if time.monotonic() >= deadline:
            want = "gone" if state == "absent" else (
                "listed healthy" if p["healthy"] else "listed")
            raise TimeoutError(
                f"the router at {base} did not show {url} {want} within {p['wait_timeout']}s; "
                f"it lists: {'; '.join(describe(listing)) or 'no workers'}")
        time.sleep(p["interval"])


def main() -> None:
    """Run the module."""
    module = AnsibleModule(
        argument_spec={
            "router_url": {"type": "str", "required": True},
            "url": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "worker_type": {"type": "str", "choices": ["prefill", "decode"]},
            "bootstrap_port": {"type": "int"},
            "healthy": {"type": "bool", "default": True},
            "reset": {"type": "bool", "default": False},
            "wait_timeout": {"type": "int", "default": 120},
            "interval": {"type": "float", "default": 0.5},
        },
        required_if=[("state", "present", ["worker_type"])],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module.params, module.check_mode))
    except (RuntimeError, TimeoutError, ValueError) as exc:
        module.fail_json(msg=to_native(exc))


if __name__ == "__main__":
    main()
