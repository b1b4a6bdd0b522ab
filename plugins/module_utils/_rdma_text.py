# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE parsers for the RDMA tools' text outputs found in support bundles (not a public API).

* ``ibstat`` (infiniband-diags): ``CA '<name>'`` blocks with ``Port N:`` sub-blocks.
* ``show_gids`` (MLNX_OFED / Mellanox script): one row per GID, ``DEV PORT INDEX GID IPv4 VER
  DEV``, ending with ``n_gids_found=N``.
* ``rdma link show`` (iproute2), as text (``link mlx5_0/1 state ACTIVE ...``) or ``-j`` JSON.

:func:`devices_from_outputs` merges what is there into the device/port shape of
:mod:`._rdma` (``sysfs_devices``, ``parse_ibv_devinfo``). A port whose GID table is not among the
outputs has ``gids_known: false`` (and ``gids: []``), so the GID check can say so instead of
reporting "no GIDs".
"""

from __future__ import annotations

import json
import re

from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError
from ansible_collections.inferops.disagg.plugins.module_utils._rdma import (
    CHECK,
    _finish_port,
    gid_info,
    normalize_gid_type,
)

FIX_IBSTAT = "run `ibstat` by hand; install infiniband-diags if it is missing"
FIX_SHOW_GIDS = "run `show_gids` by hand (MLNX_OFED) and save its whole output"
FIX_RDMA = "run `rdma link show` by hand (iproute2 >= 4.16, needs the RDMA netlink socket)"
_IBSTAT_STATES = {"active": "ACTIVE", "down": "DOWN", "initializing": "INIT", "init": "INIT",
                  "armed": "ARMED", "active_defer": "ACTIVE_DEFER"}


def _first_line(text: str) -> str:
    return next((x.strip()[:120] for x in text.splitlines() if x.strip()), "")


def _empty_port(number: int, source: str) -> dict:
    return {"port": number, "state": None, "phys_state": None, "link_layer": None, "rate": None,
            "rate_gbps": None, "gids": [], "gids_known": False, "netdev": None,
            "netdev_mtu": None, "active_mtu": None, "active_mtu_source": None, "_source": source}


def _ibstat_port_field(port: dict, key: str, value: str) -> None:
    if key == "state":
        port["state"] = _IBSTAT_STATES.get(value.lower(), value.upper())
    elif key == "physical state":
        port["phys_state"] = value
    elif key == "rate":
        port["rate_gbps"] = float(value) if re.match(r"^[0-9.]+$", value) else None
        port["rate"] = f"{value} Gb/sec" if port["rate_gbps"] is not None else value
    elif key == "link layer":
        port["link_layer"] = value


def parse_ibstat(text: str, command: str = "ibstat") -> list[dict]:
    """Devices and ports of ``ibstat``; ``incomplete`` says why a device's output is cut (no
    port, fewer than ``Number of ports``, a port without ``State`` or without the ``Link layer``
    line that ends each port block).

    Raises:
        ProbeError: nothing printed, or no ``CA '<name>'`` line (quoting the first line).
    """
    if text is None or not text.strip():
        raise ProbeError(command, "printed nothing (no RDMA devices visible?)", CHECK, FIX_IBSTAT)
    devices: list[dict] = []
    device: dict | None = None
    port: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        head = re.match(r"^CA '(?P<name>[^']+)'$", line)
        if head:
            device = {"name": head.group("name"), "numa_node": None, "fw_ver": None,
                      "node_guid": None, "board_id": None, "ports": [], "source": "ibstat",
                      "_port_cnt": None}
            devices.append(device)
            port = None
            continue
        if device is None:
            continue  # warnings before the first CA
        number = re.match(r"^Port (\d+):$", line)
        if number:
            port = _empty_port(int(number.group(1)), "ibstat")
            device["ports"].append(port)
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep:
            continue
        if port is not None:
            _ibstat_port_field(port, key, value)
        elif key == "firmware version":
            device["fw_ver"] = value
        elif key == "node guid":
            device["node_guid"] = value
        elif key == "number of ports" and value.isdigit():
            device["_port_cnt"] = int(value)
    if not devices:
        raise ProbeError(command, f"no \"CA '<name>'\" line; it printed first: "
                         f"{_first_line(text)!r}", CHECK, FIX_IBSTAT)
    for dev in devices:
        dev["incomplete"] = _incomplete(dev, dev.pop("_port_cnt"))
        unlayered = [str(p["port"]) for p in dev["ports"] if p["link_layer"] is None]
        if dev["incomplete"] is None and unlayered:  # "Link layer" ends every port block
            dev["incomplete"] = f"port {', '.join(unlayered)} without a Link layer line " \
                "(output cut?)"
    return devices


def _incomplete(device: dict, port_count: int | None) -> str | None:
    ports = device["ports"]
    if not ports:
        return "no port lines (output cut?)"
    if port_count is not None and len(ports) < port_count:
        return f"{len(ports)} of {port_count} ports printed (output cut?)"
    stateless = [str(p["port"]) for p in ports if p.get("state") is None]
    return f"port {', '.join(stateless)} without a state line (output cut?)" if stateless else None


_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def _gid_row(fields: list[str], where: str, command: str) -> dict:
    """One ``show_gids`` row: DEV PORT INDEX GID [IPv4] VER [NETDEV]."""
    if len(fields) < 5 or not (fields[1].isdigit() and fields[2].isdigit()):
        raise ProbeError(command, f"{where}: not a 'DEV PORT INDEX GID [IPv4] VER DEV' row: "
                         f"{' '.join(fields)[:80]!r}", CHECK, FIX_SHOW_GIDS)
    rest = fields[4:]
    ipv4 = rest.pop(0) if rest and _IPV4.match(rest[0]) else None
    if not rest or rest[0].lower() not in ("v1", "v2"):
        raise ProbeError(command, f"{where}: no v1/v2 GID version in {' '.join(fields)[:80]!r}",
                         CHECK, FIX_SHOW_GIDS)
    info = gid_info(fields[3])
    if ipv4 and info["ipv4"] != ipv4:
        raise ProbeError(command, f"{where}: GID {fields[3]} and IPv4 {ipv4} disagree", CHECK,
                         FIX_SHOW_GIDS)
    info.pop("valid")
    info.update(dev=fields[0], port=int(fields[1]), index=int(fields[2]),
                type=normalize_gid_type("RoCE " + rest[0].lower()),
                ndev=rest[1] if len(rest) > 1 else None)
    return info


def parse_show_gids(text: str, command: str = "show_gids") -> list[dict]:
    """The GID rows of ``show_gids``: ``{"dev", "port", "index", "gid", "ipv4", "type", "ndev",
    "link_local"}``.

    Raises:
        ProbeError: no header, a row of another shape, or a missing/disagreeing
            ``n_gids_found=N`` line (the output was cut).
    """
    if text is None or not text.strip():
        raise ProbeError(command, "printed nothing", CHECK, FIX_SHOW_GIDS)
    lines = [x for x in text.splitlines() if x.strip()]
    header = next((i for i, x in enumerate(lines) if x.split()[:3] == ["DEV", "PORT", "INDEX"]),
                  None)
    if header is None:
        raise ProbeError(command, "no 'DEV PORT INDEX GID' header; it printed first: "
                         f"{_first_line(text)!r}", CHECK, FIX_SHOW_GIDS)
    rows, found = [], None
    for number, line in enumerate(lines[header + 1:], header + 2):
        if set(line.split()) <= {"---", "----", "-----", "------------"}:
            continue
        total = re.match(r"^n_gids_found=(\d+)$", line.strip())
        if total:
            found = int(total.group(1))
            break
        rows.append(_gid_row(line.split(), f"line {number}", command))
    if found is None or found != len(rows):
        why = "no n_gids_found= line" if found is None else f"n_gids_found={found}"
        raise ProbeError(command, f"{len(rows)} GID rows but {why}: the output was cut", CHECK,
                         FIX_SHOW_GIDS)
    return rows


_LINK_TEXT = re.compile(r"^(?:\d+:\s*)?link\s+(?P<dev>[^/\s]+)/(?P<port>\d+)\s+(?P<rest>.*)$")


def _link_text(text: str, command: str) -> list[dict]:
    links = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _LINK_TEXT.match(line)
        if not match:
            raise ProbeError(command, f"not a 'link <dev>/<port> ...' line: {line[:80]!r}",
                             CHECK, FIX_RDMA)
        words = match.group("rest").split()
        fields = dict(zip(words[::2], words[1::2], strict=False))
        links.append({"dev": match.group("dev"), "port": int(match.group("port")),
                      "state": fields.get("state"), "phys_state": fields.get("physical_state"),
                      "netdev": fields.get("netdev")})
    return links


def _link_json(text: str, command: str) -> list[dict]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ProbeError(command, f"malformed JSON ({exc})", CHECK, FIX_RDMA) from None
    if not isinstance(doc, list) or not all(isinstance(x, dict) and "ifname" in x and "port" in x
                                            for x in doc):
        raise ProbeError(command, "expected a list of {ifname, port, state, ...} objects", CHECK,
                         FIX_RDMA)
    return [{"dev": x["ifname"], "port": int(x["port"]), "state": x.get("state"),
             "phys_state": x.get("physical_state"), "netdev": x.get("netdev")} for x in doc]


def parse_rdma_link(text: str, command: str = "rdma link show") -> list[dict]:
    """``rdma link show`` as text or ``-j`` JSON: ``[{"dev", "port", "state", "phys_state",
    "netdev"}]``. An empty output is an empty list (no RDMA link).

    Raises:
        ProbeError: a line of another shape, e.g. ``Failed to open NETLINK_RDMA socket`` (no
            RDMA netlink in this container).
    """
    stripped = (text or "").strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        return _link_json(stripped, command + " -j")
    return _link_text(stripped, command)


def _port(devices: dict, dev: str, number: int, source: str) -> dict:
    device = devices.setdefault(dev, {"name": dev, "numa_node": None, "fw_ver": None,
                                      "node_guid": None, "board_id": None, "ports": [],
                                      "source": source, "incomplete": None})
    port = next((p for p in device["ports"] if p["port"] == number), None)
    if port is None:
        port = _empty_port(number, source)
        device["ports"].append(port)
    return port


def devices_from_outputs(ibstat: str | None = None, show_gids: str | None = None,
                         rdma_link: str | None = None) -> list[dict]:
    """Devices from whichever of the three saved outputs are there (``None`` = absent).

    Ports and their state come from ``ibstat`` (or ``rdma link``), GIDs from ``show_gids``,
    netdevs from ``rdma link`` or ``show_gids``. Every port gets the RoCE v2 IPv4 GID fields of
    :mod:`._rdma`; ``gids_known`` is true only when ``show_gids`` was read.
    """
    devices: dict[str, dict] = {}
    for device in parse_ibstat(ibstat) if ibstat is not None else []:
        devices[device["name"]] = device
    for link in parse_rdma_link(rdma_link) if rdma_link is not None else []:
        port = _port(devices, link["dev"], link["port"], "rdma link")
        port["state"] = port["state"] or link["state"]
        port["phys_state"] = port["phys_state"] or link["phys_state"]
        port["netdev"] = link["netdev"] or port["netdev"]
    gids = parse_show_gids(show_gids) if show_gids is not None else None
    for device in devices.values():
        for port in device["ports"]:
            port["gids_known"] = gids is not None
    for row in gids or []:
        port = _port(devices, row["dev"], row["port"], "show_gids")
        port["gids_known"] = True
        keys = ("gid", "ipv4", "link_local", "index", "type", "ndev")
        port["gids"].append({k: row[k] for k in keys})
    out = []
    for device in devices.values():
        for port in device["ports"]:
            port.pop("_source", None)
            port["gids"].sort(key=lambda g: g["index"])
            _finish_port(port)
        device["ports"].sort(key=lambda p: p["port"])
        out.append(device)
    return out
