# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: launch settings of a worker derived from its host's facts.

Per prefill/decode host, before any container starts, the sglang_worker role derives:

* the RDMA devices Mooncake uses (``--disaggregation-ib-device``): every device with an ACTIVE
  port of the expected link layer, minus ``disagg_ib_device_exclude`` and (when asked) the device
  whose netdev carries the default route, in natural order (mlx5_2 before mlx5_10);
* ``MC_GID_INDEX``: the index of the RoCE v2 ``::ffff:a.b.c.d`` GID on those ports (what
  ``inferops.disagg.rdma_facts`` reports per port as ``roce_v2_ipv4_gid_index``);
* ``NCCL_SOCKET_IFNAME`` / ``GLOO_SOCKET_IFNAME``: the interface of the default IPv4 route,
  never an HCA name (the seed appended its mlx5 names to it).

An explicit value (``disagg_ib_devices``, ``disagg_mc_gid_index``, ``disagg_socket_ifname``)
wins over the derivation. With ``disagg_kv_transport: tcp`` nothing RDMA is derived or passed.
Nothing here raises on bad host facts: every problem is one line in ``errors`` naming the host,
what is missing or wrong, and the variable that fixes it; the role fails on them before any
container starts. ``mismatches`` compares the hosts of one role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TRANSPORTS = ("rdma", "tcp")
LINK_LAYERS = ("Ethernet", "InfiniBand")
#: RDMA device (HCA) names as the kernel's drivers spell them; none is a network interface.
HCA_NAME = re.compile(
    r"^(mlx\d+_(bond_)?\d+|bnxt_re\d+|irdma\d+|ionic_\d+|rxe\d+|siw\d+|hfi1_\d+|qedr\d+"
    r"|erdma_\d+|efa_\d+|hns_\d+|rocep\S+|ibp\S+)$"
)
SOCKET_VAR = "disagg_socket_ifname"
DEFAULT_ROUTE_FACT = "ansible_default_ipv4.interface"
GID_FACT = "ansible_facts.rdma (roce_v2_ipv4_gid_index of the ports used)"


def natural_key(name: str) -> list[Any]:
    """Sort key that orders mlx5_2 before mlx5_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def split_names(value: Any) -> list[str]:
    """``"a, b"``, ``["a", "b"]``, ``""`` or None as a list of names, order kept, duplicates
    dropped."""
    if value is None:
        return []
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    out: list[str] = []
    for item in items:
        name = str(item).strip()
        if name and name not in out:
            out.append(name)
    return out


def _gid_index(value: Any) -> int | None:
    """An explicit GID index (int or digits), or None when unset ("" or null)."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a GID index: {value!r}")
    index = int(str(value).strip())
    if index < 0:
        raise ValueError(f"not a GID index: {value!r}")
    return index


def _ports_of(device: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(device.get("ports") or [])


def _usable_ports(device: Mapping[str, Any], link_layer: str) -> list[Mapping[str, Any]]:
    """Ports that are ACTIVE with the expected link layer."""
    return [
        p for p in _ports_of(device)
        if p.get("state") == "ACTIVE"
        and str(p.get("link_layer") or "").lower() == link_layer.lower()
    ]


def _why_unusable(device: Mapping[str, Any], link_layer: str) -> str:
    ports = _ports_of(device)
    if not ports:
        return "no ports"
    parts = []
    for p in ports:
        state = p.get("state") or "unknown state"
        layer = p.get("link_layer") or "unknown link layer"
        if state != "ACTIVE":
            parts.append(f"port {p.get('port')} {state}")
        else:
            parts.append(f"port {p.get('port')} {layer}, not {link_layer}")
    return "; ".join(parts)


def _netdevs(device: Mapping[str, Any]) -> set[str]:
    return {str(p["netdev"]) for p in _ports_of(device) if p.get("netdev")}


def _select_devices(
    host: str, devices: Sequence[Mapping[str, Any]], exclude: list[str],
    exclude_default_route: bool, default_ifname: str | None, link_layer: str,
    errors: list[str],
) -> tuple[list[str], list[dict[str, str]], str]:
    """The derived device list, what was left out and why, and the source text."""
    chosen: list[str] = []
    left_out: list[dict[str, str]] = []
    for device in sorted(devices, key=lambda d: natural_key(str(d.get("name")))):
        name = str(device.get("name"))
        if name in exclude:
            left_out.append({"name": name, "reason": "in disagg_ib_device_exclude"})
        elif exclude_default_route and default_ifname and default_ifname in _netdevs(device):
            left_out.append({"name": name,
                             "reason": f"carries the default route ({default_ifname})"})
        elif not _usable_ports(device, link_layer):
            left_out.append({"name": name, "reason": _why_unusable(device, link_layer)})
        else:
            chosen.append(name)
    rules = [f"ACTIVE {link_layer} ports"]
    if exclude:
        rules.append("minus disagg_ib_device_exclude")
    if exclude_default_route:
        rules.append("minus the default-route NIC" if default_ifname
                     else "no default route, so no NIC excluded for it")
    source = "derived: ansible_facts.rdma (" + ", ".join(rules) + ")"
    if not chosen:
        found = "; ".join(f"{d['name']}: {d['reason']}" for d in left_out) or "no RDMA devices"
        errors.append(
            f"{host}: launch.ib_devices: no RDMA device left for Mooncake ({found}); expected "
            f"at least one device with an ACTIVE {link_layer} port; fix: bring a port up, or "
            "correct disagg_ib_link_layer / disagg_ib_device_exclude / "
            "disagg_ib_exclude_default_route_nic, or set disagg_ib_devices "
            "(disagg_kv_transport: tcp on hosts without RDMA)")
    return chosen, left_out, source


def _derive_gid(
    host: str, by_name: Mapping[str, Mapping[str, Any]], chosen: list[str], link_layer: str,
    errors: list[str],
) -> tuple[int | None, str]:
    """MC_GID_INDEX from the RoCE v2 IPv4 GIDs of the chosen devices' usable ports."""
    if link_layer == "InfiniBand":
        return None, "not set: InfiniBand ports need no RoCE GID index (Mooncake's default)"
    known = [n for n in chosen if n in by_name]
    if not known:
        errors.append(
            f"{host}: launch.mc_gid_index: cannot derive MC_GID_INDEX: none of the RDMA devices "
            f"used ({','.join(chosen) or 'none'}) is visible in the host's RDMA facts; "
            "fix: set disagg_mc_gid_index (the RoCE v2 IPv4 GID index, `show_gids`)")
        return None, "not derived"
    by_index: dict[int, list[str]] = {}
    missing: list[str] = []
    for name in known:
        ports = _usable_ports(by_name[name], link_layer) or _ports_of(by_name[name])
        for p in ports:
            index = p.get("roce_v2_ipv4_gid_index")
            label = f"{name} port {p.get('port')}"
            if index is None:
                missing.append(label)
            else:
                by_index.setdefault(int(index), []).append(label)
    if missing:
        errors.append(
            f"{host}: launch.mc_gid_index: cannot derive MC_GID_INDEX: no RoCE v2 IPv4 GID "
            f"(::ffff:a.b.c.d) on {', '.join(missing)}; fix: give those netdevs an IPv4 address, "
            "or leave the devices out (disagg_ib_device_exclude), or set disagg_mc_gid_index")
        return None, "not derived"
    if len(by_index) != 1:
        found = "; ".join(f"{i} on {', '.join(labels)}" for i, labels in sorted(by_index.items()))
        errors.append(
            f"{host}: launch.mc_gid_index: the ports used have different RoCE v2 IPv4 GID "
            f"indices ({found}) but MC_GID_INDEX is one value; fix: set disagg_mc_gid_index, "
            "or use only ports with the same index (disagg_ib_devices / "
            "disagg_ib_device_exclude)")
        return None, "not derived"
    return next(iter(by_index)), "derived: " + GID_FACT


def _check_socket_ifname(
    host: str, value: str, hca_names: set[str], source: str, errors: list[str],
) -> None:
    for part in split_names(value):
        name = part.lstrip("^=")
        if name in hca_names or HCA_NAME.match(name):
            errors.append(
                f"{host}: launch.socket_ifname: {source} gives {value!r}, which names the RDMA "
                f"device {name}; NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME take network interfaces "
                "(`ip route show default`), never HCA names; fix: set disagg_socket_ifname to "
                "the interface of the host's default route (e.g. eth0), or \"\" to derive it")


def derive(
    host: str,
    settings: Mapping[str, Any],
    rdma: Mapping[str, Any] | None = None,
    default_ifname: str | None = None,
    rdma_error: str | None = None,
) -> dict[str, Any]:
    """Derive one host's launch settings.

    Args:
        host: inventory name, for messages.
        settings: ``kv_transport``, ``ib_devices``, ``ib_device_exclude``,
            ``exclude_default_route_nic``, ``link_layer``, ``mc_gid_index``, ``socket_ifname``
            (the ``disagg_*`` variables without their prefix).
        rdma: ``ansible_facts.rdma`` from inferops.disagg.rdma_facts (None in tcp mode or when
            it was not gathered).
        default_ifname: ``ansible_default_ipv4.interface`` (None when the host has no default
            IPv4 route or it was not gathered).
        rdma_error: rdma_facts' failure message, when it failed.

    Returns:
        ``kv_transport``, ``ib_devices`` (list) and ``ib_device_arg`` (comma-joined, "" = the
        flag is not passed), ``ib_devices_source``, ``ib_devices_left_out`` (name, reason),
        ``mc_gid_index`` and its ``_source``, ``socket_ifname`` and its ``_source``, ``env``
        (what the worker gets: MC_GID_INDEX, NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME) and
        ``errors`` (one line each; [] when every value is known).
    """
    errors: list[str] = []
    transport = str(settings.get("kv_transport") or "rdma")
    link_layer = str(settings.get("link_layer") or "Ethernet")
    if transport not in TRANSPORTS:
        errors.append(f"{host}: launch.kv_transport: disagg_kv_transport is {transport!r}; "
                      "expected rdma or tcp; fix: set disagg_kv_transport to rdma or tcp")
    if link_layer not in LINK_LAYERS:
        errors.append(f"{host}: launch.link_layer: disagg_ib_link_layer is {link_layer!r}; "
                      "expected Ethernet or InfiniBand; fix: set disagg_ib_link_layer")
    try:
        explicit_gid = _gid_index(settings.get("mc_gid_index"))
    except ValueError:
        errors.append(f"{host}: launch.mc_gid_index: disagg_mc_gid_index is "
                      f"{settings.get('mc_gid_index')!r}; expected a GID index >= 0 or null; "
                      "fix: set disagg_mc_gid_index to an integer or null (derive)")
        explicit_gid = None
    out: dict[str, Any] = {
        "host": host,
        "kv_transport": transport,
        "ib_devices": [],
        "ib_device_arg": "",
        "ib_devices_source": "not used: disagg_kv_transport is tcp",
        "ib_devices_left_out": [],
        "mc_gid_index": None,
        "mc_gid_index_source": "not used: disagg_kv_transport is tcp",
        "socket_ifname": None,
        "socket_ifname_source": "",
        "env": {},
        "errors": errors,
    }
    devices = list((rdma or {}).get("devices") or [])
    by_name = {str(d.get("name")): d for d in devices}
    if transport == "rdma" and not errors:
        explicit = split_names(settings.get("ib_devices"))
        exclude = split_names(settings.get("ib_device_exclude"))
        if explicit:
            chosen, source = explicit, "set by disagg_ib_devices"
            absent = [n for n in explicit if devices and n not in by_name]
            has = ", ".join(sorted(by_name, key=natural_key))
            if absent:
                errors.append(
                    f"{host}: launch.ib_devices: disagg_ib_devices names {', '.join(absent)}, "
                    f"which this host does not have (it has {has}); "
                    "fix: correct disagg_ib_devices for this host, or set it to \"\" to derive")
        elif not devices:
            chosen, source = [], "not derived"
            why = rdma_error or (
                "rdma_facts found no RDMA device ("
                + "; ".join((rdma or {}).get("fallbacks") or ["not gathered"]) + ")")
            errors.append(
                f"{host}: launch.ib_devices: cannot derive the RDMA devices: {why}; fix: load "
                "the RDMA driver (mlx5_ib) and mount /sys, or set disagg_ib_devices and "
                "disagg_mc_gid_index, or disagg_kv_transport: tcp on hosts without RDMA")
        else:
            chosen, left_out, source = _select_devices(
                host, devices, exclude, bool(settings.get("exclude_default_route_nic")),
                default_ifname, link_layer, errors)
            out["ib_devices_left_out"] = left_out
        out.update(ib_devices=chosen, ib_device_arg=",".join(chosen), ib_devices_source=source)
        if explicit_gid is not None:
            out.update(mc_gid_index=explicit_gid, mc_gid_index_source="set by disagg_mc_gid_index")
        elif chosen and not errors:
            index, gid_source = _derive_gid(host, by_name, chosen, link_layer, errors)
            out.update(mc_gid_index=index, mc_gid_index_source=gid_source)
        else:
            out["mc_gid_index_source"] = "not derived"
    explicit_ifname = str(settings.get("socket_ifname") or "").strip()
    if explicit_ifname:
        out.update(socket_ifname=explicit_ifname, socket_ifname_source="set by " + SOCKET_VAR)
    elif default_ifname:
        out.update(socket_ifname=str(default_ifname),
                   socket_ifname_source="derived: " + DEFAULT_ROUTE_FACT)
    else:
        out["socket_ifname_source"] = "not derived"
        errors.append(
            f"{host}: launch.socket_ifname: cannot derive NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME: "
            f"the host has no default IPv4 route ({DEFAULT_ROUTE_FACT} is undefined); fix: set "
            f"{SOCKET_VAR} to the interface the hosts reach each other on")
    if out["socket_ifname"]:
        _check_socket_ifname(host, out["socket_ifname"], set(by_name) | set(out["ib_devices"]),
                             out["socket_ifname_source"], errors)
    env: dict[str, str] = {}
    if transport == "rdma" and out["mc_gid_index"] is not None:
        env["MC_GID_INDEX"] = str(out["mc_gid_index"])
    if out["socket_ifname"]:
        env.update(NCCL_SOCKET_IFNAME=out["socket_ifname"], GLOO_SOCKET_IFNAME=out["socket_ifname"])
    out["env"] = env
    return out


def _join(pairs: Sequence[tuple[str, Any]]) -> str:
    return "; ".join(f"{host} = {value}" for host, value in pairs)


def mismatches(hosts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where the hosts of one role disagree, one line each (naming hosts, values and the fix).

    Args:
        hosts: what ``derive`` returned for each host, with ``modes``, the worker modes the
            host runs (prefill, decode or both). Hosts whose settings have errors are skipped
            (their own errors say more).

    Returns:
        [] when every role agrees: the KV transport across all workers; the number of RDMA
        devices and MC_GID_INDEX across the hosts of each mode (rdma only).
    """
    workers = [{"host": h["host"], "mode": mode, "settings": h}
               for h in hosts for mode in h["modes"]]
    out: list[str] = []
    good = [w for w in workers if not (w.get("settings") or {}).get("errors")]
    transports = sorted({str(w["settings"].get("kv_transport")) for w in good})
    if len(transports) > 1:
        pairs = [(f"{w['host']} ({w['mode']})", w["settings"].get("kv_transport")) for w in good]
        out.append(
            f"launch.kv_transport: prefill and decode workers use different KV transports "
            f"({_join(pairs)}); fix: set disagg_kv_transport once, in group_vars/all")
    for mode in ("prefill", "decode"):
        hosts = [w for w in good if w.get("mode") == mode
                 and w["settings"].get("kv_transport") == "rdma"]
        counts = [(str(w["host"]), len(w["settings"].get("ib_devices") or [])) for w in hosts]
        if len({count for host, count in counts}) > 1:
            shown = [(str(w["host"]), f"{len(w['settings']['ib_devices'])} "
                      f"({','.join(w['settings']['ib_devices'])})") for w in hosts]
            out.append(
                f"launch.ib_devices: the {mode} hosts would use different numbers of RDMA "
                f"devices ({_join(shown)}); fix: bring the missing ports up, or make every "
                f"{mode} host use the same devices (disagg_ib_devices or "
                f"disagg_ib_device_exclude in group_vars/{mode} or host_vars)")
        gids = [(str(w["host"]), w["settings"].get("mc_gid_index")) for w in hosts]
        if len({gid for host, gid in gids}) > 1:
            out.append(
                f"launch.mc_gid_index: the {mode} hosts would use different MC_GID_INDEX values "
                f"({_join(gids)}); fix: give every {mode} host the same GID table (IPv4 "
                f"addresses on the RDMA netdevs), or set disagg_mc_gid_index in "
                f"group_vars/{mode} or per host")
    return out


def summary_line(settings: Mapping[str, Any]) -> str:
    """One line for the deploy summary: each derived value and where it came from."""
    parts = [f"KV transport {settings.get('kv_transport')}"]
    if settings.get("kv_transport") == "rdma":
        left_out = settings.get("ib_devices_left_out") or []
        skipped = (" [left out: " + ", ".join(f"{d['name']} ({d['reason']})" for d in left_out)
                   + "]") if left_out else ""
        parts.append(f"--disaggregation-ib-device {settings.get('ib_device_arg') or '(none)'} "
                     f"({settings.get('ib_devices_source')}){skipped}")
        index = settings.get("mc_gid_index")
        parts.append(f"MC_GID_INDEX {'unset' if index is None else index} "
                     f"({settings.get('mc_gid_index_source')})")
    else:
        parts.append("no RDMA devices or MC_GID_INDEX (disagg_kv_transport is tcp)")
    parts.append(f"NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME {settings.get('socket_ifname') or 'unset'}"
                 f" ({settings.get('socket_ifname_source')})")
    return "; ".join(parts)
