# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Inventory and variable checks made on the controller before any host is touched.

Pure functions over plain data (the ``validate_settings`` action plugin gathers it from the
inventory): each returns a list of problems, one short line each, naming the host or variable,
the bad value and the fix. ``unknown_names`` returns warnings (a misspelled variable is ignored
by Ansible, so the deploy would silently run with the default).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PREFIXES", "PORT_VARS", "TRANSFER_BACKENDS", "HostView", "address_clashes",
           "type_problems",
           "count_problems", "etcd_host_problems", "extra_args_problems", "name_problems",
           "port_problems", "transfer_backend_problems", "unknown_names"]

# Variable name prefixes whose unknown names are reported (misspellings).
PREFIXES = ("disagg_", "sglang_worker_", "router_", "preflight_", "benchmark_")

# The ports a host's services listen on, by the group (or role) that runs them.
PORT_VARS: dict[str, tuple[str, ...]] = {
    "proxy": ("disagg_router_port", "disagg_router_prometheus_port"),
    "etcd": ("disagg_etcd_client_port", "disagg_etcd_peer_port"),
    "prefill": ("disagg_prefill_port", "disagg_bootstrap_port"),
    "decode": ("disagg_decode_port",),
}
DIST_INIT_VAR = "disagg_dist_init_port"

# What --disaggregation-transfer-backend the collection deploys (SGLang 0.5.2 also has nixl,
# ascend and fake; the roles, the KV probe and the image are built for Mooncake).
TRANSFER_BACKENDS = ("mooncake",)

# A Docker container/network name fragment: what disagg_name may be.
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class HostView:
    """What the checks need of one inventory host, its variables already templated."""

    name: str
    groups: tuple[str, ...]
    address: str
    ports: Mapping[str, Any] = field(default_factory=dict)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("+").isdigit()


def _loopback(address: str) -> bool:
    return address in ("localhost", "::1") or address.startswith("127.")


def address_clashes(hosts: Sequence[HostView]) -> list[str]:
    """Two inventory hosts that resolve to one address (ansible_host / disagg_host_address).

    Loopback addresses are left out: an inventory of local processes (tests, a laptop) runs
    several hosts on 127.0.0.1, apart by port (``port_problems`` checks them as one machine).
    """
    by_address: dict[str, list[str]] = {}
    for host in hosts:
        by_address.setdefault(host.address, []).append(host.name)
    return [f"hosts {', '.join(names)} all have the address {address}: two hosts would run "
            "services on one machine under two names. Fix: give each host its own ansible_host "
            "(or disagg_host_address), or make them one host in several groups with "
            "disagg_allow_colocation: true"
            for address, names in sorted(by_address.items())
            if len(names) > 1 and not _loopback(address)]


def _services(host: HostView, etcd_host: str | None, multinode: Mapping[str, bool]) -> list[str]:
    names = [g for g in ("proxy", "prefill", "decode") if g in host.groups]
    if etcd_host == host.name:
        names.append("etcd")
    return names + [f"{m} dist-init" for m in ("prefill", "decode")
                    if m in host.groups and multinode.get(m)]


def _bad_port(var: str, value: Any, host: str, reported: set[tuple[str, str]]) -> list[str]:
    if not _is_int(value) or 1 <= int(value) <= 65535 or (var, str(value)) in reported:
        return []  # a port that is not an integer at all is type_problems' to name
    reported.add((var, str(value)))
    return [f"{var}: {value!r} is not a port (an integer 1-65535) on {host}. Fix: set {var} "
            "to a free port number"]


def port_problems(hosts: Sequence[HostView], etcd_host: str | None = None,
                  multinode: Mapping[str, bool] | None = None) -> list[str]:
    """Ports outside 1-65535, and two services of one machine on one port.

    Hosts with one address are one machine. ``etcd_host``: the host that runs etcd (None: no
    etcd); ``multinode``: mode -> whether its instances span nodes (then rank 0 listens on
    disagg_dist_init_port too).
    """
    problems: list[str] = []
    reported: set[tuple[str, str]] = set()
    used: dict[tuple[str, int], tuple[str, str]] = {}
    for host in hosts:
        for service in _services(host, etcd_host, multinode or {}):
            names = (DIST_INIT_VAR,) if service.endswith("dist-init") else PORT_VARS[service]
            for var in names:
                value = host.ports.get(var)
                if value is None or not _is_int(value):
                    continue
                bad = _bad_port(var, value, host.name, reported)
                problems += bad
                key = (host.address, int(value))
                if bad or key not in used:
                    used.setdefault(key, (host.name, var))
                    continue
                other_host, other_var = used[key]
                if (other_host, other_var) == (host.name, var):
                    continue
                where = (f"{host.name} runs both" if other_host == host.name else
                         f"{other_host} and {host.name} share the address {host.address}")
                problems.append(f"{host.name}: {var} and {other_var} are both {value}, and "
                                f"{where}. Fix: give one of them another port")
    return problems


def count_problems(values: Mapping[str, Any]) -> list[str]:
    """disagg_xp / disagg_yd: null, or a positive integer."""
    problems = []
    for var, value in values.items():
        if value is None or value == "":
            continue
        if not _is_int(value) or int(value) < 1:
            problems.append(f"{var} must be a positive integer (or null for whatever the "
                            f"inventory has), got {value!r}. Fix: e.g. {var}: 2")
    return problems


def transfer_backend_problems(value: Any) -> list[str]:
    """disagg_transfer_backend is one the collection deploys."""
    if str(value) in TRANSFER_BACKENDS:
        return []
    return [f"disagg_transfer_backend {value!r} is not supported: the collection deploys "
            f"{', '.join(TRANSFER_BACKENDS)} (SGLang 0.5.2's nixl/ascend/fake backends are not "
            "built into its image or checked by preflight). Fix: disagg_transfer_backend: mooncake"]


def etcd_host_problems(metadata: Any, etcd_host: Any, inventory_hosts: Iterable[str]) -> list[str]:
    """With disagg_mooncake_metadata etcd, disagg_etcd_host is an inventory host."""
    if str(metadata) != "etcd":
        return []
    hosts = sorted(inventory_hosts)
    if str(etcd_host) in hosts:
        return []
    return [f"disagg_etcd_host {etcd_host!r} is not a host of this inventory (it has "
            f"{', '.join(hosts[:8])}{', ...' if len(hosts) > 8 else ''}). Fix: name an inventory "
            "host, usually the proxy host, or leave disagg_etcd_host unset (the first proxy host)"]


def name_problems(name: Any) -> list[str]:
    """disagg_name is usable inside Docker container and network names."""
    if isinstance(name, str) and _NAME.match(name):
        return []
    return [f"disagg_name {name!r} cannot be part of a container name (letters, digits, '_', '.', "
            "'-', starting with a letter or digit, at most 40 characters). Fix: e.g. "
            "disagg_name: pd"]


def extra_args_problems(args_by_var: Mapping[str, Any], known_flags: Iterable[str]) -> list[str]:
    """Flags in ``*_extra_args`` that SGLang 0.5.2's launch_server does not accept."""
    known = set(known_flags)
    problems = []
    for var, args in args_by_var.items():
        if not isinstance(args, (list, tuple)):
            problems.append(f"{var} must be a list of command-line words, got {args!r}. Fix: e.g. "
                            f"{var}: [--enable-metrics]")
            continue
        for word in args:
            flag = str(word).split("=", 1)[0]
            if not flag.startswith("--") or flag in known:
                continue
            close = difflib.get_close_matches(flag, sorted(known), n=1, cutoff=0.75)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(f"{var}: {flag} is not a flag of SGLang 0.5.2's launch_server. "
                            f"Fix: {hint}remove it, or check `python -m sglang.launch_server "
                            "--help` of the image's SGLang")
    return problems


def unknown_names(names: Iterable[str], declared: Iterable[str],
                  prefixes: Sequence[str] = PREFIXES) -> list[str]:
    """Warnings for variable names with a collection prefix that nothing in it declares."""
    known = sorted(set(declared))
    warnings = []
    for name in sorted(set(names)):
        if not name.startswith(tuple(prefixes)) or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is set in the inventory but no role of inferops.disagg uses "
                        f"it, so it has no effect{hint}")
    return warnings


_SPEC_KEYS = ("type", "elements", "choices")


def _type_error(name: str, value: Any, spec: Mapping[str, Any]) -> str | None:
    """The validator's complaint about one value, or None when it converts cleanly."""
    # pylint: disable-next=import-outside-toplevel
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    clean = {k: spec[k] for k in _SPEC_KEYS if k in spec}
    if not clean:
        return None
    messages = ArgumentSpecValidator({name: clean}).validate({name: value}).error_messages
    return str(messages[0]) if messages else None


def _expected(spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    text = {"int": "an integer", "bool": "true or false (unquoted)", "str": "a string",
            "list": "a list", "dict": "a mapping", "float": "a number",
            "raw": "any value", "path": "a path"}.get(kind, kind)
    if kind == "list" and spec.get("elements"):
        text += f" of {spec['elements']}"
    if spec.get("choices"):
        text += " (one of " + ", ".join(str(c) for c in spec["choices"]) + ")"
    return text


def type_problems(values_by_host: Mapping[str, Mapping[str, Any]],
                  specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Values that do not fit the type (or choices) a role's argument spec declares.

    ``values_by_host``: host -> {variable: templated value}; the same bad value on several
    hosts (group_vars) is reported once with the hosts it is on.
    """
    seen: dict[tuple[str, str], list[str]] = {}
    values: dict[tuple[str, str], Any] = {}
    for host in sorted(values_by_host):
        for name, value in values_by_host[host].items():
            if name not in specs or value is None:
                continue
            key = (name, repr(value))
            if key not in seen:
                if _type_error(name, value, specs[name]) is None:
                    seen[key] = []
                    continue
                seen[key] = [host]
                values[key] = value
            elif seen[key]:
                seen[key].append(host)
    everyone = len(values_by_host)
    problems = []
    for (name, text), hosts in sorted(seen.items()):
        if not hosts:
            continue
        value = values[(name, text)]
        where = (f"all {everyone} hosts" if len(hosts) == everyone and everyone > 1
                 else ", ".join(hosts[:5]) + (", ..." if len(hosts) > 5 else ""))
        problems.append(f"{name} must be {_expected(specs[name])}, got {text} "
                        f"({type(value).__name__}) on {where}. Fix: correct {name} in the "
                        "inventory (group_vars, host_vars or -e)")
    return problems
