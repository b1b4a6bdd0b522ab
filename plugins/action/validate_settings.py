# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Check the inventory's hosts and variables on the controller, before any host is touched.

Runs in the controller process, once (run_once): for every inventory host it templates the
variables the inventory sets with a collection prefix (disagg_, sglang_worker_, router_,
preflight_, benchmark_) and checks them against the roles' argument specs (types, choices), the
host addresses, every host's ports, xP/yD, the transfer backend, disagg_etcd_host,
disagg_name, and the launch flags of ``sglang_worker_extra_args`` and the model profile's
``extra_args``. Unknown names with a collection prefix are warnings, with "did you mean".
The logic is module_utils/_validate.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.inferops.disagg.plugins.module_utils import _validate
from ansible_collections.inferops.disagg.plugins.module_utils._plain import plain as _plain
from ansible_collections.inferops.disagg.plugins.module_utils._sglang_flags import (
    LAUNCH_SERVER_FLAGS,
)

display = Display()

COLLECTION = Path(__file__).resolve().parents[2]
_GROUPS = ("proxy", "prefill", "decode")
# A YAML key with a collection prefix anywhere in the collection's roles and playbooks
# (set_fact names, vars): names the collection uses without declaring them in a spec.
_KEY = re.compile(r"^\s*-?\s*((?:" + "|".join(_validate.PREFIXES) + r")\w+):", re.M)


def collection_names() -> tuple[dict[str, dict], set[str]]:
    """(the argument spec of every option of every role, every name the collection uses)."""
    specs: dict[str, dict] = {}
    names: set[str] = set()
    for path in sorted(COLLECTION.glob("roles/*/meta/argument_specs.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for entry in (data.get("argument_specs") or {}).values():
            for name, spec in ((entry or {}).get("options") or {}).items():
                specs.setdefault(name, spec or {})
    for pattern in ("roles/*/defaults/*.yml", "roles/*/tasks/*.yml", "roles/*/vars/*.yml",
                    "playbooks/*.yml"):
        for path in COLLECTION.glob(pattern):
            names.update(_KEY.findall(path.read_text()))
    return specs, names | set(specs)


class _Templated:
    """The play's variables (role defaults included), each templated when read."""

    def __init__(self, templar: Any, variables: dict) -> None:
        self._templar = templar
        self._vars = variables

    def get(self, name: str, default: Any = None) -> Any:
        """The templated value of ``name`` (``default`` when unset or not renderable here)."""
        if name not in self._vars:
            return default
        try:
            return _plain(self._templar.template(self._vars[name]))
        except Exception:  # pylint: disable=broad-exception-caught
            return default

    def __iter__(self) -> Any:
        return iter(self._vars)


class ActionModule(ActionBase):
    """Fail with every problem found, or warn."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("ignore_errors_of", "profile", "launcher_flags"))

    def _host_values(self, hostvars: Any, host: str) -> dict[str, Any]:
        """The variables with a collection prefix that the inventory sets for ``host``."""
        raw = hostvars.raw_get(host) if hasattr(hostvars, "raw_get") else hostvars.get(host, {})
        out: dict[str, Any] = {}
        for name in list(raw):
            if not name.startswith(_validate.PREFIXES):
                continue
            try:
                out[name] = _plain(hostvars[host][name])
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # A template that cannot be rendered here (a lookup of a file that a later play
                # writes) is checked where it is used; say so at -v.
                display.vvv(f"validate_settings: {host}: {name} not checked ({exc})")
        return out

    @staticmethod
    def _worker_extra_args(values: dict[str, dict], groups: dict) -> dict[str, Any]:
        """sglang_worker_extra_args of the worker hosts, one entry per distinct value."""
        workers = sorted(set(groups.get("prefill", [])) | set(groups.get("decode", [])))
        by_value: dict[str, list[str]] = {}
        for host in workers:
            if "sglang_worker_extra_args" in values.get(host, {}):
                key = json.dumps(values[host]["sglang_worker_extra_args"])
                by_value.setdefault(key, []).append(host)
        out: dict[str, Any] = {}
        for key, hosts in by_value.items():
            where = (f"all {len(hosts)} worker hosts" if len(hosts) == len(workers) > 1
                     else ", ".join(hosts))
            out[f"sglang_worker_extra_args ({where})"] = json.loads(key)
        return out

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        hostvars = task_vars.get("hostvars")
        groups = task_vars.get("groups", {})
        if hostvars is None:
            raise AnsibleActionFail("validate_settings: no hostvars")
        play_vars = _Templated(self._templar, task_vars)
        hosts = sorted(set().union(*(groups.get(g, []) for g in _GROUPS)))
        values = {h: self._host_values(hostvars, h) for h in hosts}
        specs, declared = collection_names()
        errors = _validate.type_problems(values, specs)
        port_vars = [v for vs in _validate.PORT_VARS.values() for v in vs]
        port_vars.append(_validate.DIST_INIT_VAR)
        views = []
        for host in hosts:
            address = hostvars[host].get("disagg_host_address") or \
                hostvars[host].get("ansible_host") or host
            views.append(_validate.HostView(
                name=host, groups=tuple(g for g in _GROUPS if host in groups.get(g, [])),
                address=str(address),
                ports={v: values[host].get(v, play_vars.get(v)) for v in port_vars}))
        profile = self._task.args.get("profile") or {}
        nnodes = {m: int((profile.get(m) or {}).get("nnodes") or 1) > 1
                  for m in ("prefill", "decode")}
        metadata = play_vars.get("disagg_mooncake_metadata")
        etcd_host = str(play_vars.get("disagg_etcd_host")) if metadata == "etcd" else None
        errors += _validate.address_clashes(views)
        errors += _validate.port_problems(views, etcd_host, nnodes)
        errors += _validate.count_problems({v: play_vars.get(v)
                                            for v in ("disagg_xp", "disagg_yd")})
        errors += _validate.transfer_backend_problems(play_vars.get("disagg_transfer_backend"))
        errors += _validate.etcd_host_problems(metadata, play_vars.get("disagg_etcd_host"),
                                               groups.get("all", []))
        errors += _validate.name_problems(play_vars.get("disagg_name"))
        flags = LAUNCH_SERVER_FLAGS | set(self._task.args.get("launcher_flags") or [])
        extra = {f"{m}.extra_args (model profile)": (profile.get(m) or {}).get("extra_args") or []
                 for m in ("prefill", "decode")}
        extra.update(self._worker_extra_args(values, groups))
        errors += _validate.extra_args_problems(extra, flags)
        names = {n for v in values.values() for n in v}
        names |= {n for n in play_vars if n.startswith(_validate.PREFIXES)}
        warnings = _validate.unknown_names(names, declared)
        errors = list(dict.fromkeys(errors))
        for warning in warnings:
            display.warning(warning)
        result.update(changed=False, errors=errors, warnings=warnings,
                      msg=f"{len(errors)} problem(s), {len(warnings)} warning(s) in the settings "
                          f"of {len(hosts)} hosts")
        return result
