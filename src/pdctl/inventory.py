"""The deployment's endpoints as the inventory describes them (``ansible-inventory --list``).

The inventory is read through ``ansible_runner.interface.get_inventory`` so every inventory
source works exactly as in the playbooks (INI, YAML, group_vars, the ``inferops.disagg.slurm``
plugin). Ports and addresses follow the collection-wide variables of ``roles/_common``:
``disagg_host_address`` (else ``ansible_host``, else the inventory name),
``disagg_router_port``, ``disagg_prefill_port``, ``disagg_decode_port``,
``disagg_bootstrap_port``; their defaults are read from ``roles/_common/defaults/main.yml``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pdctl.events import Recorder
from pdctl.runner import RunRequest, collection_root, runner_envvars

ROLES = ("proxy", "prefill", "decode")
PORT_VARS = {"proxy": "disagg_router_port", "prefill": "disagg_prefill_port",
             "decode": "disagg_decode_port"}
BOOTSTRAP_VAR = "disagg_bootstrap_port"
# A playbook may publish its endpoints with ansible.builtin.set_stats under this key.
STATS_KEY = "disagg_endpoints"


class InventoryError(Exception):
    """The inventory cannot be read; the message is Ansible's."""


def load_inventory(inventory: str, envvars: dict[str, str] | None = None,
                   root: Path | None = None) -> dict[str, Any]:
    """``ansible-inventory --list`` of ``inventory`` as a dict (via ansible-runner)."""
    from ansible_runner.interface import get_inventory

    root = root or collection_root()
    response, error = get_inventory("list", [inventory], response_format="json", quiet=True,
                                    envvars=runner_envvars(root, envvars),
                                    project_dir=str(root))
    if not isinstance(response, dict) or not response.get("_meta"):
        raise InventoryError(f"cannot read inventory {inventory}: "
                             f"{(error or str(response) or 'no output').strip()[-2000:]}")
    return response


def role_defaults(root: Path | None = None) -> dict[str, Any]:
    """Plain (untemplated) values of ``roles/_common/defaults/main.yml``."""
    path = (root or collection_root()) / "roles" / "_common" / "defaults" / "main.yml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {k: v for k, v in data.items() if not (isinstance(v, str) and "{{" in v)}


def group_hosts(listing: dict[str, Any], group: str) -> list[str]:
    """Hosts of ``group`` (with its child groups) in inventory order."""
    entry = listing.get(group) or {}
    hosts = list(entry.get("hosts") or [])
    for child in entry.get("children") or []:
        hosts += [h for h in group_hosts(listing, child) if h not in hosts]
    return hosts


def _value(hostvars: dict[str, Any], name: str, extravars: dict[str, Any],
           defaults: dict[str, Any]) -> Any:
    for source in (extravars, hostvars, defaults):
        value = source.get(name)
        if value is not None and not (isinstance(value, str) and "{{" in value):
            return value
    return None


def host_address(host: str, hostvars: dict[str, Any], extravars: dict[str, Any]) -> str:
    """How other machines reach ``host``: disagg_host_address, ansible_host, or its name."""
    return str(_value(hostvars, "disagg_host_address", extravars, {})
               or _value(hostvars, "ansible_host", extravars, {}) or host)


def endpoints(listing: dict[str, Any], extravars: dict[str, Any] | None = None,
              defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"router": url, "prefill": [...], "decode": [...], "bootstrap": [...]}`` by group.

    Each entry of ``prefill``/``decode`` is ``{"host", "url"}`` (prefill adds
    ``bootstrap_port``); ``router`` is the first proxy host's URL.
    """
    extravars = extravars or {}
    defaults = role_defaults() if defaults is None else defaults
    hostvars_all = (listing.get("_meta") or {}).get("hostvars") or {}
    out: dict[str, Any] = {"router": None, "routers": [], "prefill": [], "decode": []}
    for role in ROLES:
        for host in group_hosts(listing, role):
            hostvars = hostvars_all.get(host) or {}
            port = _value(hostvars, PORT_VARS[role], extravars, defaults)
            url = f"http://{host_address(host, hostvars, extravars)}:{port}"
            if role == "proxy":
                out["routers"].append({"host": host, "url": url})
                continue
            entry = {"host": host, "url": url}
            if role == "prefill":
                entry["bootstrap_port"] = _value(hostvars, BOOTSTRAP_VAR, extravars, defaults)
            out[role].append(entry)
    if out["routers"]:
        out["router"] = out["routers"][0]["url"]
    return out


def endpoints_after_run(request: RunRequest) -> Callable[[Recorder], dict[str, Any]]:
    """After a deploy/bench run: what the playbook published (``set_stats``
    ``disagg_endpoints``), else the endpoints computed from the inventory."""

    def compute(recorder: Recorder) -> dict[str, Any]:
        published = recorder.artifact_data.get(STATS_KEY)
        if isinstance(published, dict) and published:
            return published
        try:
            listing = load_inventory(request.inventory, request.envvars, request.project_dir)
        except InventoryError:  # the run's own failure already says why
            return {}
        return endpoints(listing, request.extravars, role_defaults(request.project_dir))

    return compute
