# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE parsers for RDMA facts: sysfs under a root, or ``ibv_devinfo -v`` text.

Per port the parsers return::

    {"port": 1, "state": "ACTIVE", "phys_state": "LinkUp", "link_layer": "Ethernet",
     "rate": "400 Gb/sec (4X NDR)", "rate_gbps": 400.0, "netdev": "ens12np0", "netdev_mtu": 9000,
     "active_mtu": 4096, "gids": [...], "roce_v2_ipv4_gid_index": 3,
     "roce_v2_ipv4_gid": "::ffff:10.14.1.72",
     "roce_v2_ipv4": "10.14.1.72"}

``roce_v2_ipv4_gid_index`` is what ``MC_GID_INDEX`` must be for Mooncake on that port: the index
of a GID of the form ``::ffff:a.b.c.d`` whose type is "RoCE v2".
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re

from ansible_collections.inferops.disagg.plugins.module_utils._probe import (
    ProbeError,
    read_int,
    read_text,
    rooted,
)

CHECK = "rdma.facts"
FIX_SYSFS = "check the RDMA driver (mlx5_ib) is loaded and /sys is mounted in the container"
FIX_IBV = "run `ibv_devinfo -v` by hand; install ibverbs-utils (rdma-core) if it is missing"
IB_MTUS = (4096, 2048, 1024, 512, 256)
#: GRH 40 + UDP 8 + BTH 12 + XRC 4 + AtomicETH 28 + ICRC 4 (the kernel's iboe_get_mtu()).
ROCE_HEADERS = 96
ZERO_GID = "0000:0000:0000:0000:0000:0000:0000:0000"


def roce_active_mtu(netdev_mtu: int | None) -> int | None:
    """The RoCE active MTU the kernel derives from the netdev MTU (1500 -> 1024, 9000 -> 4096)."""
    if netdev_mtu is None:
        return None
    payload = netdev_mtu - ROCE_HEADERS
    for mtu in IB_MTUS:
        if payload >= mtu:
            return mtu
    return None


def gid_info(gid: str) -> dict:
    """Classify a GID: compressed form, the IPv4 when IPv4-mapped, link-local or not."""
    try:
        addr = ipaddress.IPv6Address(gid.strip())
    except ValueError:
        return {"gid": gid.strip(), "ipv4": None, "link_local": False, "valid": False}
    mapped = addr.ipv4_mapped
    return {
        "gid": str(addr) if mapped is None else f"::ffff:{mapped}",
        "ipv4": str(mapped) if mapped is not None else None,
        "link_local": addr.is_link_local,
        "valid": not addr.is_unspecified,
    }


def normalize_gid_type(text: str | None) -> str | None:
    """``"RoCE v2"``, ``"IB/RoCE v1"`` as the kernel spells them (None when unknown)."""
    if not text:
        return None
    low = text.strip().lower()
    if "v2" in low:
        return "RoCE v2"
    if "v1" in low or low in ("ib", "infiniband"):
        return "IB/RoCE v1"
    return text.strip()


def pick_roce_v2_ipv4(gids: list[dict]) -> dict | None:
    """The first GID that is IPv4-mapped with type RoCE v2 (what Mooncake's MC_GID_INDEX needs)."""
    for gid in sorted(gids, key=lambda g: g["index"]):
        if gid.get("ipv4") and gid.get("type") == "RoCE v2":
            return gid
    return None


def _rate_gbps(rate: str | None) -> float | None:
    if not rate:
        return None
    match = re.match(r"\s*([0-9.]+)\s*Gb", rate)
    return float(match.group(1)) if match else None


def _state_name(text: str | None) -> str | None:
    """``"4: ACTIVE"`` -> ``"ACTIVE"``; ``"PORT_ACTIVE (4)"`` -> ``"ACTIVE"``."""
    if not text:
        return None
    text = text.strip()
    match = re.match(r"^\d+:\s*(.+)$", text)
    if match:
        text = match.group(1)
    text = re.sub(r"\s*\(\d+\)$", "", text)
    return re.sub(r"^PORT_", "", text).strip()


def _finish_port(port: dict) -> dict:
    best = pick_roce_v2_ipv4(port["gids"])
    port["roce_v2_ipv4_gid_index"] = best["index"] if best else None
    port["roce_v2_ipv4_gid"] = best["gid"] if best else None
    port["roce_v2_ipv4"] = best["ipv4"] if best else None
    port["rate_gbps"] = port.get("rate_gbps") or _rate_gbps(port.get("rate"))
    if port.get("netdev") is None:
        named = [g["ndev"] for g in port["gids"] if g.get("ndev")]
        port["netdev"] = named[0] if named else None
    return port


def _sysfs_port(root: str, dev_path: str, port_dir: str) -> dict:
    rel = "/" + os.path.relpath(port_dir, root)
    gids = []
    for gid_file in glob.glob(os.path.join(port_dir, "gids", "*")):
        index_text = os.path.basename(gid_file)
        if not index_text.isdigit():
            continue
        raw = read_text(root, f"{rel}/gids/{index_text}")
        if not raw or raw == ZERO_GID:
            continue
        info = gid_info(raw)
        if not info["valid"]:
            if ":" not in raw:
                raise ProbeError(f"{rel}/gids/{index_text}", f"not a GID: {raw[:50]!r}",
                                 CHECK, FIX_SYSFS)
            continue
        info.pop("valid")
        info["index"] = int(index_text)
        info["type"] = normalize_gid_type(read_text(root, f"{rel}/gid_attrs/types/{index_text}"))
        info["ndev"] = read_text(root, f"{rel}/gid_attrs/ndevs/{index_text}") or None
        gids.append(info)
    gids.sort(key=lambda g: g["index"])
    netdevs = sorted(os.listdir(os.path.join(dev_path, "device", "net"))) if os.path.isdir(
        os.path.join(dev_path, "device", "net")) else []
    port = {
        "port": int(os.path.basename(port_dir)),
        "state": _state_name(read_text(root, rel + "/state")),
        "phys_state": _state_name(read_text(root, rel + "/phys_state")),
        "link_layer": read_text(root, rel + "/link_layer"),
        "rate": read_text(root, rel + "/rate"),
        "gids": gids,
        "netdev": None,
        "netdev_mtu": None,
        "active_mtu": None,
        "active_mtu_source": None,
    }
    named = [g["ndev"] for g in gids if g.get("ndev")]
    port["netdev"] = named[0] if named else (netdevs[0] if len(netdevs) == 1 else None)
    if port["netdev"]:
        port["netdev_mtu"] = read_int(root, f"/sys/class/net/{port['netdev']}/mtu",
                                      CHECK, "check `ip link show " + port["netdev"] + "`")
    if (port["link_layer"] or "").lower() == "ethernet" and port["netdev_mtu"] is not None:
        port["active_mtu"] = roce_active_mtu(port["netdev_mtu"])
        port["active_mtu_source"] = "netdev mtu"
    return _finish_port(port)


def sysfs_devices(root: str) -> list[dict] | None:
    """Read ``/sys/class/infiniband/*`` under ``root``; None when the class directory is absent."""
    base = rooted(root, "/sys/class/infiniband")
    if not os.path.isdir(base):
        return None
    devices = []
    for dev_path in sorted(glob.glob(os.path.join(base, "*"))):
        name = os.path.basename(dev_path)
        rel = "/sys/class/infiniband/" + name
        numa = read_int(root, rel + "/device/numa_node", CHECK, FIX_SYSFS)
        ports = [
            _sysfs_port(root, dev_path, p)
            for p in sorted(glob.glob(os.path.join(dev_path, "ports", "*")))
            if os.path.basename(p).isdigit()
        ]
        devices.append({
            "name": name,
            "numa_node": numa if numa is not None and numa >= 0 else None,
            "fw_ver": read_text(root, rel + "/fw_ver"),
            "node_guid": read_text(root, rel + "/node_guid"),
            "board_id": read_text(root, rel + "/board_id"),
            "ports": sorted(ports, key=lambda p: p["port"]),
            "source": "sysfs",
        })
    return devices


def incomplete_device(device: dict, port_count: int | None) -> str | None:
    """Why a device read from ``ibv_devinfo`` text is incomplete (output cut), or None.

    ``ibv_devinfo`` prints every port of a device with its ``state:`` line; a device without
    port lines, with fewer than its ``phys_port_cnt``, or a port without a state is a cut output,
    not a device with 0 ports.
    """
    ports = device["ports"]
    if not ports:
        return "no port lines after its hca_id (output cut?)"
    if port_count is not None and len(ports) < port_count:
        return f"{len(ports)} of phys_port_cnt {port_count} ports printed (output cut?)"
    stateless = [str(p["port"]) for p in ports if p.get("state") is None]
    if stateless:
        return f"port {', '.join(stateless)} without a state line (output cut?)"
    return None


_GID_LINE = re.compile(r"^GID\[\s*(\d+)\]:\s*([0-9a-fA-F:.]+)(?:\s*,\s*(.+))?$")


def parse_ibv_devinfo(text: str, command: str = "ibv_devinfo -v") -> list[dict]:
    """Parse ``ibv_devinfo -v`` text (GID types appear only with rdma-core >= 28).

    Each device has ``incomplete``: None, or why its output is cut (:func:`incomplete_device`);
    preflight reports such a device as an ``rdma.facts`` finding.
    """
    if text is None or not text.strip():
        raise ProbeError(command, "printed nothing (no RDMA devices visible?)", CHECK, FIX_IBV)
    devices: list[dict] = []
    device: dict | None = None
    port: dict | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("hca_id:"):
            device = {"name": line.split(":", 1)[1].strip(), "numa_node": None, "fw_ver": None,
                      "node_guid": None, "board_id": None, "ports": [], "source": "ibv_devinfo",
                      "_port_cnt": None}
            devices.append(device)
            port = None
            continue
        if device is None:
            if line.lower().startswith(("no ib devices", "failed to", "libibverbs: warning")):
                continue
            raise ProbeError(command, f"expected 'hca_id:' first, found {line[:60]!r}",
                             CHECK, FIX_IBV)
        match = re.match(r"^port:\s*(\d+)$", line)
        if match:
            port = {"port": int(match.group(1)), "state": None, "phys_state": None,
                    "link_layer": None, "rate": None, "rate_gbps": None, "gids": [],
                    "netdev": None, "netdev_mtu": None, "active_mtu": None,
                    "active_mtu_source": "ibv_devinfo", "_width": None, "_speed": None}
            device["ports"].append(port)
            continue
        gid = _GID_LINE.match(line)
        if gid and port is not None:
            info = gid_info(gid.group(2))
            if info.pop("valid"):
                info.update(index=int(gid.group(1)), type=normalize_gid_type(gid.group(3)),
                            ndev=None)
                port["gids"].append(info)
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue  # capability flag lines
        key, value = key.strip(), value.strip()
        if port is None:
            if key in ("fw_ver", "node_guid", "board_id"):
                device[key] = value
            elif key == "phys_port_cnt" and value.isdigit():
                device["_port_cnt"] = int(value)
            continue
        if key in ("state", "phys_state"):
            port[key] = _state_name(value)
        elif key == "link_layer":
            port["link_layer"] = value
        elif key == "active_mtu":
            found = re.match(r"^(\d+)", value)
            port["active_mtu"] = int(found.group(1)) if found else None
        elif key == "active_width":
            found = re.match(r"^(\d+)X", value)
            port["_width"] = int(found.group(1)) if found else None
        elif key == "active_speed":
            found = re.match(r"^([0-9.]+)\s*Gbps", value)
            port["_speed"] = float(found.group(1)) if found else None
    if not devices:
        raise ProbeError(command, "no hca_id found", CHECK, FIX_IBV)
    for dev in devices:
        dev["incomplete"] = incomplete_device(dev, dev.pop("_port_cnt"))
        for p in dev["ports"]:
            width, speed = p.pop("_width"), p.pop("_speed")
            if width and speed:
                p["rate_gbps"] = width * speed
                p["rate"] = f"{width * speed:g} Gb/sec ({width}X)"
            _finish_port(p)
    return devices


def uverbs_nodes(root: str) -> list[str]:
    """``/dev/infiniband/uverbs*`` visible under ``root`` (what a container needs mapped in)."""
    return sorted(os.path.basename(p) for p in glob.glob(rooted(root, "/dev/infiniband/uverbs*")))


def summarize(devices: list[dict]) -> dict:
    """Device/port counts, the set of RoCE v2 IPv4 GID indices across ACTIVE Ethernet ports, and
    the devices whose output was cut (``incomplete_devices``, ``"<name>: <why>"``)."""
    indices = sorted({
        p["roce_v2_ipv4_gid_index"]
        for d in devices for p in d["ports"]
        if p["roce_v2_ipv4_gid_index"] is not None
    })
    return {
        "incomplete_devices": [f"{d['name']}: {d['incomplete']}" for d in devices
                               if d.get("incomplete")],
        "device_count": len(devices),
        "port_count": sum(len(d["ports"]) for d in devices),
        "active_port_count": sum(1 for d in devices for p in d["ports"] if p["state"] == "ACTIVE"),
        "roce_v2_ipv4_gid_indices": indices,
        "mc_gid_index": indices[0] if len(indices) == 1 else None,
    }
