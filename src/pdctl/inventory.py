"""The deployment's endpoints as the inventory describes them (``ansible-inventory --list``).

The inventory is read through ``ansible_runner.interface.get_inventory`` so every inventory
source works exactly as in the playbooks (INI, YAML, group_vars, the ``inferops.disagg.slurm``
plugin). The endpoints themselves are computed by the collection's own
``plugins/module_utils/disagg_endpoints`` (the code behind the ``inferops.disagg.endpoints``
filter the roles use), so pdctl and the playbooks cannot disagree: multi-node rank 0, per-role
port overrides and the collection-wide defaults included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from disagg_endpoints import compute_endpoints

from pdctl.events import Recorder
from pdctl.runner import RunRequest, collection_root, runner_envvars

ROLES = ("proxy", "prefill", "decode")
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


def group_hosts(listing: dict[str, Any], group: str) -> list[str]:
    """Hosts of ``group`` (with its child groups) in inventory order."""
    entry = listing.get(group) or {}
    hosts = list(entry.get("hosts") or [])
    for child in entry.get("children") or []:
        hosts += [h for h in group_hosts(listing, child) if h not in hosts]
    return hosts


def _plain(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "{{" not in value


def model_profile(listing: dict[str, Any], extravars: dict[str, Any] | None = None,
                  root: Path | None = None) -> dict[str, Any]:
    """The model profile the inventory names (``disagg_model_profile`` in
    ``disagg_model_profiles_dir``, else the collection's ``models/``); ``{}`` when it cannot be
    read: the endpoints then assume single-node instances, as the profile's absence means."""
    extravars = extravars or {}
    hostvars = (listing.get("_meta") or {}).get("hostvars") or {}
    merged = [extravars, *hostvars.values()]
    name = next((v["disagg_model_profile"] for v in merged
                 if _plain(v.get("disagg_model_profile"))), None)
    if not name:
        return {}
    folder = next((v["disagg_model_profiles_dir"] for v in merged
                   if _plain(v.get("disagg_model_profiles_dir"))), None)
    path = Path(folder) if folder else (root or collection_root()) / "models"
    try:
        data = yaml.safe_load((path / f"{name}.yml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def endpoints(listing: dict[str, Any], extravars: dict[str, Any] | None = None,
              profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"router": url, "routers": [...], "prefill": [...], "decode": [...], "workers": {...}}``
    (see ``disagg_endpoints.compute_endpoints``); extra vars win over host vars, as in Ansible."""
    extravars = extravars or {}
    hostvars_all = (listing.get("_meta") or {}).get("hostvars") or {}
    groups = {role: group_hosts(listing, role) for role in ROLES}
    hostvars = {h: {**(hostvars_all.get(h) or {}), **extravars}
                for hosts in groups.values() for h in hosts}
    return compute_endpoints(groups, hostvars, {}, profile or {})


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
        return endpoints(listing, request.extravars,
                         model_profile(listing, request.extravars, request.project_dir))

    return compute
