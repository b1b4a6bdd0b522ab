# Copyright: (c) 2026, inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Every endpoint of an xPyD deployment, computed from the inventory in one place.

The router's worker list, the deploy's health gate, the smoke test, the summary and pdctl all
call :func:`compute_endpoints` (Ansible through the ``inferops.disagg.endpoints`` filter, pdctl
by importing this module). Pure logic on plain mappings: no Ansible import.

A value is looked up, per host, in this order: the host's own variables (inventory, extra vars),
then ``settings`` (the play's values of the collection-wide variables), then
:data:`DEFAULT_SETTINGS` (the same values as ``roles/_common/defaults/main.yml``; a unit test
keeps the two equal). Per-role variables set in the inventory (``router_port``,
``sglang_worker_port`` …) take precedence over the collection-wide ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The collection-wide defaults this module needs (roles/_common/defaults/main.yml).
DEFAULT_SETTINGS: dict[str, int] = {
    "disagg_router_port": 30000,
    "disagg_router_prometheus_port": 29000,
    "disagg_prefill_port": 30001,
    "disagg_decode_port": 30002,
    "disagg_bootstrap_port": 8998,
    "disagg_dist_init_port": 5757,
}

WORKER_MODES: tuple[str, ...] = ("prefill", "decode")

# Per-role variables a host may set in the inventory, and the collection-wide variable they
# override: {field: (role variable, collection-wide variable)}.
ROUTER_VARS: dict[str, tuple[str, str]] = {
    "port": ("router_port", "disagg_router_port"),
    "prometheus_port": ("router_prometheus_port", "disagg_router_prometheus_port"),
}
WORKER_VARS: dict[str, tuple[str, str]] = {
    "bootstrap_port": ("sglang_worker_bootstrap_port", "disagg_bootstrap_port"),
    "dist_init_port": ("sglang_worker_dist_init_port", "disagg_dist_init_port"),
}
WORKER_PORT_VARS: dict[str, str] = {"prefill": "disagg_prefill_port",
                                    "decode": "disagg_decode_port"}


class EndpointError(ValueError):
    """The inventory does not describe a valid set of endpoints; the message names the fix."""


def _usable(value: Any) -> bool:
    """A value that is set (an untemplated ``{{ }}`` string from ansible-inventory is not)."""
    if value is None:
        return False
    return not (isinstance(value, str) and ("{{" in value or value == ""))


def host_value(host: str, hostvars: Mapping[str, Mapping[str, Any]], names: Sequence[str],
               settings: Mapping[str, Any]) -> Any:
    """The first usable value of ``names`` in ``host``'s variables, else in ``settings``, else
    in :data:`DEFAULT_SETTINGS`; ``None`` when none has one."""
    own = hostvars.get(host) or {}
    for source in (own, settings, DEFAULT_SETTINGS):
        for name in names:
            if name in source and _usable(source[name]):
                return source[name]
    return None


def _port(host: str, hostvars: Mapping[str, Mapping[str, Any]], names: Sequence[str],
          settings: Mapping[str, Any]) -> int:
    value = host_value(host, hostvars, names, settings)
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise EndpointError(f"{host}: {names[0]} is {value!r}, not a port number; fix: set "
                            f"{names[-1]} to an integer in 1-65535") from None
    if not 1 <= port <= 65535:
        raise EndpointError(f"{host}: {names[0]} is {port}, outside 1-65535; fix: set "
                            f"{names[-1]} to a port in 1-65535")
    return port


def host_address(host: str, hostvars: Mapping[str, Mapping[str, Any]],
                 settings: Mapping[str, Any] | None = None) -> str:
    """How other machines reach ``host``: ``disagg_host_address``, else ``ansible_host``, else
    its inventory name."""
    own = hostvars.get(host) or {}
    for name in ("disagg_host_address", "ansible_host"):
        if name in own and _usable(own[name]):
            return str(own[name])
    return host


def _nnodes(profile: Mapping[str, Any] | None, mode: str) -> int:
    section = (profile or {}).get(mode) or {}
    try:
        return max(1, int(section.get("nnodes") or 1))
    except (TypeError, ValueError):
        return 1


def _router(host: str, hostvars: Mapping[str, Mapping[str, Any]],
            settings: Mapping[str, Any]) -> dict[str, Any]:
    own = hostvars.get(host) or {}
    address = str(own["router_address"]) if _usable(own.get("router_address")) \
        else host_address(host, hostvars)
    entry: dict[str, Any] = {"host": host, "address": address}
    for field, names in ROUTER_VARS.items():
        entry[field] = _port(host, hostvars, names, settings)
    entry["url"] = f"http://{address}:{entry['port']}"
    return entry


def _worker(host: str, mode: str, hosts: Sequence[str], nnodes: int,
            hostvars: Mapping[str, Mapping[str, Any]],
            settings: Mapping[str, Any]) -> dict[str, Any]:
    own = hostvars.get(host) or {}
    address = str(own["sglang_worker_advertise_address"]) \
        if _usable(own.get("sglang_worker_advertise_address")) else host_address(host, hostvars)
    index = hosts.index(host)
    rank = index % nnodes
    leader = hosts[index - rank]
    entry: dict[str, Any] = {
        "host": host, "mode": mode, "address": address,
        "port": _port(host, hostvars, ("sglang_worker_port", WORKER_PORT_VARS[mode]), settings),
        "node_rank": rank, "nnodes": nnodes, "leader": leader, "serves_http": rank == 0,
    }
    for field, names in WORKER_VARS.items():
        entry[field] = _port(host, hostvars, names, settings)
    entry["url"] = f"http://{address}:{entry['port']}"
    return entry


def compute_endpoints(groups: Mapping[str, Sequence[str]],
                      hostvars: Mapping[str, Mapping[str, Any]],
                      settings: Mapping[str, Any] | None = None,
                      profile: Mapping[str, Any] | None = None,
                      leaving: Sequence[str] = ()) -> dict[str, Any]:
    """Every endpoint of the deployment the inventory describes.

    ``groups`` maps group names to host lists (``proxy``, ``prefill``, ``decode``); ``hostvars``
    maps hosts to their variables; ``settings`` holds the play's collection-wide values;
    ``profile`` is the model profile (``<mode>.nnodes`` > 1 makes multi-node instances: the
    hosts of the group form instances in inventory order and rank 0 serves HTTP).

    Returns ``{"router": url or None, "routers": [...], "prefill": [...], "decode": [...],
    "workers": {host: {mode: entry}}}``. ``prefill``/``decode`` list one entry per instance
    (its rank 0, with ``hosts``, the instance's hosts in rank order); ``workers`` has every
    host's own entry (``node_rank``, ``leader``, ``dist_init_addr`` …).

    ``leaving`` names hosts being removed (``disagg_remove_hosts``, scale in): their own entries
    stay in ``workers`` (marked ``leaving``; the removal needs their URLs), but an instance with
    a leaving host is not among the ``prefill``/``decode`` instances the router should list.
    """
    settings = settings or {}
    out: dict[str, Any] = {"router": None, "routers": [], "prefill": [], "decode": [],
                           "workers": {}}
    for host in groups.get("proxy") or []:
        out["routers"].append(_router(host, hostvars, settings))
    if out["routers"]:
        out["router"] = out["routers"][0]["url"]
    for mode in WORKER_MODES:
        hosts = list(groups.get(mode) or [])
        nnodes = _nnodes(profile, mode)
        entries = [_worker(h, mode, hosts, nnodes, hostvars, settings) for h in hosts]
        by_host = {e["host"]: e for e in entries}
        for entry in entries:
            leader = by_host[entry["leader"]]
            entry["dist_init_addr"] = f"{leader['address']}:{leader['dist_init_port']}"
            entry["leaving"] = entry["host"] in leaving
            out["workers"].setdefault(entry["host"], {})[mode] = entry
        for entry in entries:
            ranks = [e["host"] for e in entries if e["leader"] == entry["host"]]
            if entry["serves_http"] and not set(ranks) & set(leaving):
                out[mode].append({**entry, "hosts": ranks})
    return out
