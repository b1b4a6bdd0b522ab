# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE parsers for AMD GPU facts: amd-smi JSON, rocm-smi JSON, sysfs (not a public API).

Every parser takes the recorded text (or a root directory for sysfs) and returns plain dicts;
malformed input raises :class:`ProbeError` naming the command, the check and the fix.

Per GPU the parsers return::

    {"index": 0, "product": "AMD Instinct MI300X", "gfx_target": "gfx942", "device_id": "0x74a1",
     "vram_total_bytes": 206141652992, "bdf": "0000:0c:00.0", "numa_node": 0, "source": "amd-smi"}
"""

from __future__ import annotations

import glob
import json
import os
import re

from ansible_collections.inferops.disagg.plugins.module_utils._probe import (
    ProbeError,
    clean,
    is_na,
    read_int,
    read_text,
    rooted,
    to_bytes,
)

CHECK = "gpu.facts"
FIX_AMD_SMI = "run the command by hand; reinstall amd-smi-lib (ROCm) if its output is not JSON"
FIX_ROCM_SMI = "run the command by hand; reinstall rocm-smi-lib if its output is not JSON"
AMD_VENDOR = 0x1002

#: PCI device ids seen on Instinct parts, used when sysfs has no product_name.
DEVICE_NAMES = {
    0x74A0: "AMD Instinct MI300A",
    0x74A1: "AMD Instinct MI300X",
    0x74A2: "AMD Instinct MI308X",
    0x74A5: "AMD Instinct MI325X",
    0x74A9: "AMD Instinct MI300X HF",
    0x74B5: "AMD Instinct MI300X VF",
    0x75A0: "AMD Instinct MI350X",
    0x75A3: "AMD Instinct MI355X",
    0x740F: "AMD Instinct MI210",
    0x740C: "AMD Instinct MI250X/MI250",
    0x738C: "AMD Instinct MI100",
}
BDF_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


_GFX_RE = re.compile(r"^gfx(?P<digits>[0-9a-f]+)$")


def _gfx_from_digits(digits: str) -> str | None:
    """``942`` -> ``gfx942``, ``1100`` -> ``gfx1100``; rocm-smi's ``9010`` (stepping printed in
    decimal) -> ``gfx90a``. None when the digits fit no gfx target shape."""
    if not digits.isdigit():
        return f"gfx{digits}" if len(digits) in (3, 4) else None  # gfx90a, gfx90c, gfx103?
    major_len = 2 if digits[0] == "1" and len(digits) >= 4 else 1
    major, rest = digits[:major_len], digits[major_len:]
    if len(rest) == 2:
        return f"gfx{major}{rest}"
    if len(rest) == 3 and rest[0] == "0" and int(rest[1:]) < 16:
        return f"gfx{major}0{int(rest[1:]):x}"  # minor 0, stepping 10..15 in decimal
    return None


def gfx_name(target: object) -> str | None:
    """Return a gfx target name.

    ``"gfx942"`` stays; KFD's number ``90402`` becomes ``"gfx942"``; rocm-smi's ``"gfx9010"``
    (the stepping printed in decimal, ROCm 5.x/6.x ``GFX Version``) becomes ``"gfx90a"``. A
    spelling that fits no gfx target is returned as given (lower case), so the gfx target check
    shows it rather than a guess.
    """
    target = clean(target)
    if target is None:
        return None
    if isinstance(target, str) and target.strip().lower().startswith("gfx"):
        text = target.strip().lower()
        match = _GFX_RE.match(text)
        return (_gfx_from_digits(match.group("digits")) or text) if match else text
    try:
        number = int(str(target), 0)
    except ValueError:
        return str(target)
    if number <= 0:
        return None
    major, minor, step = number // 10000, (number // 100) % 100, number % 100
    return f"gfx{major}{minor:x}{step:x}"


def normalize_bdf(value: object) -> str | None:
    """Lower-case a PCI address; a bare ``bb:dd.f`` gets domain ``0000``."""
    value = clean(value)
    if value is None:
        return None
    text = str(value).strip().lower()
    if re.match(r"^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$", text):
        text = "0000:" + text
    return text if BDF_RE.match(text) else None


def _int_or_none(value: object) -> int | None:
    value = clean(value)
    if value is None:
        return None
    try:
        number = int(str(value), 0)
    except ValueError:
        return None
    return None if number < 0 else number


def first_line(text: str | None) -> str:
    """The first non-blank line a tool printed (stripped, at most 120 characters)."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def _not_json(command: str, text: str, fix: str) -> ProbeError:
    return ProbeError(command, f"output is not JSON (an old tool without --json?); it printed "
                      f"first: {first_line(text)!r}", CHECK, fix)


def _load_json(text: str, command: str, fix: str) -> object:
    """The JSON document in ``text``. Lines before it (warnings some amd-smi builds print) are
    skipped; plain text (no line starting with ``[`` or ``{``) is refused quoting its first line.
    """
    if text is None or not text.strip():
        raise ProbeError(command, "printed nothing", CHECK, fix)
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip()[:1] in ("[", "{")), None)
    if start is None:
        raise _not_json(command, text, fix)
    try:
        return json.loads("\n".join(lines[start:]))
    except ValueError as exc:
        after = (f" after {start} line(s) of other output; it printed first: "
                 f"{first_line(text)!r}") if start else ""
        raise ProbeError(command, f"malformed JSON ({exc}){after}", CHECK, fix) from None


def _gpu_records(doc: object, command: str) -> list[dict]:
    """The per-GPU objects of an amd-smi document: a list, ``{"gpu_data": [...]}``, or one GPU."""
    if isinstance(doc, dict):
        if "gpu_data" in doc:
            doc = doc["gpu_data"]
        elif "gpu" in doc:
            doc = [doc]
        else:
            raise ProbeError(
                command, f"expected a list of GPUs or an object with gpu_data, found keys "
                f"{sorted(doc)[:6]}", CHECK, FIX_AMD_SMI,
            )
    if not isinstance(doc, list):
        raise ProbeError(command, f"expected a list of GPUs, found {type(doc).__name__}",
                         CHECK, FIX_AMD_SMI)
    bad = [r for r in doc if not isinstance(r, dict)]
    if bad:
        raise ProbeError(command, f"GPU entry is not an object: {bad[0]!r:.60}", CHECK, FIX_AMD_SMI)
    return doc


def _section(record: dict, name: str) -> dict:
    value = record.get(name)
    return value if isinstance(value, dict) else {}


_IDENTITY = {
    "product": (("asic", "market_name"), ("board", "product_name")),
    "gfx target": (("asic", "target_graphics_version"),),
    "VRAM": (("vram", "size"), ("vram", "vram_size"), ("vram", "total")),
}


def _has_field(record: dict, paths: tuple[tuple[str, str], ...]) -> bool:
    """Whether any ``section.key`` of ``paths`` is in the record (N/A values count)."""
    return any(key in _section(record, section) or (section in record
                                                    and is_na(record[section]))
               for section, key in paths)


def check_static_record(record: dict, position: int, command: str) -> None:
    """Refuse a GPU record without any of the product, gfx target and VRAM fields.

    That is the output of another command (``amd-smi metric --json`` in place of ``static``):
    parsed anyway it would give GPUs whose every field is None, which the checks skip.
    """
    if any(_has_field(record, paths) for paths in _IDENTITY.values()):
        return
    keys = sorted(str(k) for k in record)[:8]
    raise ProbeError(
        command, f"GPU record {position} has none of the {', '.join(_IDENTITY)} fields "
        f"(keys: {', '.join(keys)}): this is not the output of `amd-smi static`", CHECK,
        "save or run `amd-smi static --json` itself (not `metric`, `list` or another command)")


def _static_gpu(record: dict, position: int, command: str) -> dict:
    """One GPU of ``amd-smi static`` (JSON, or the text form read into the same sections)."""
    check_static_record(record, position, command)
    asic, bus = _section(record, "asic"), _section(record, "bus")
    vram, board = _section(record, "vram"), _section(record, "board")
    numa, driver = _section(record, "numa"), _section(record, "driver")
    size = next((vram[key] for key in ("size", "vram_size", "total") if key in vram), None)
    index = _int_or_none(record.get("gpu"))
    return {
        "index": position if index is None else index,
        "product": clean(asic.get("market_name")) or clean(board.get("product_name")),
        "gfx_target": gfx_name(asic.get("target_graphics_version")),
        "device_id": clean(asic.get("device_id")),
        "vram_total_bytes": to_bytes(size, "MB", command, CHECK),
        "bdf": normalize_bdf(bus.get("bdf") if bus else record.get("bdf")),
        "numa_node": _int_or_none(numa.get("node")),
        "driver_version": clean(driver.get("version") or driver.get("driver_version")),
        "source": "amd-smi",
    }


def parse_amd_smi_static(text: str, command: str = "amd-smi static --json") -> list[dict]:
    """Parse ``amd-smi static --json`` (list form of amd-smi < 26, ``gpu_data`` form of >= 26).

    A record with none of the product, gfx target and VRAM fields (another command's output)
    raises :class:`ProbeError` naming the command; plain text is refused quoting its first line.
    """
    records = _gpu_records(_load_json(text, command, FIX_AMD_SMI), command)
    return [_static_gpu(record, position, command) for position, record in enumerate(records)]


_KERNEL_BANNER = re.compile(r"^Linux\s*version\s*(?P<release>[0-9][\w.+~-]*?)\s*(?:\(|$)")
_DRIVER_VERSION = re.compile(r"^\d+(?:\.\d+)+(?:[-+~][\w.+~-]*)?$")


def driver_version_text(value: object) -> str | None:
    """The amdgpu driver version as amd-smi ``version`` reports it, made readable.

    A version (``6.8.5``, ``6.10.5-2084815.24.04``) stays. amd-smi 25.x on an inbox (distribution
    kernel) driver prints the kernel banner instead (``Linux version 6.8.0-79-generic (buildd@...)
    ...``, spaces lost on some builds): that becomes ``inbox kernel driver (6.8.0-79-generic)``.
    Anything else is kept as ``unrecognized: '<first 40 characters>'``, never as a version.
    """
    text = clean(value)
    if text is None:
        return None
    text = str(text).strip()
    banner = _KERNEL_BANNER.match(text)
    if banner:
        return f"inbox kernel driver ({banner.group('release')})"
    if text.lower().startswith("linux"):
        return "inbox kernel driver (kernel release not printed)"
    if _DRIVER_VERSION.match(text):
        return text
    return f"unrecognized: {text[:40]!r}"


_VERSION_KEYS = {
    "amd_smi": ("version", "tool_version", "amdsmi_tool_version"),
    "amdsmi_library": ("amdsmi_library_version", "lib_version", "library_version"),
    "rocm": ("rocm_version",),
    "driver": ("amdgpu_version", "driver_version", "amdgpu_driver_version"),
}
_VERSION_TEXT = {
    "amd_smi": re.compile(r"AMDSMI Tool:\s*([^|\s]+)"),
    "amdsmi_library": re.compile(r"AMDSMI Library version:\s*([^|\s]+)"),
    "rocm": re.compile(r"ROCm version:\s*([^|\s]+)"),
    "driver": re.compile(r"amdgpu version:\s*([^|]*[^|\s])"),
}


def parse_amd_smi_version(text: str, command: str = "amd-smi version --json") -> dict:
    """Parse ``amd-smi version`` as JSON (object or one-element list) or as its one-line text.

    ``driver`` goes through :func:`driver_version_text` (the inbox driver's kernel banner).
    """
    out = dict.fromkeys(_VERSION_KEYS)
    stripped = (text or "").strip()
    if not stripped:
        raise ProbeError(command, "printed nothing", CHECK, FIX_AMD_SMI)
    if stripped[0] in "[{":
        doc = _load_json(stripped, command, FIX_AMD_SMI)
        if isinstance(doc, list) and doc and isinstance(doc[0], dict):
            doc = doc[0]
        if not isinstance(doc, dict):
            raise ProbeError(command, "expected a JSON object", CHECK, FIX_AMD_SMI)
        for name, keys in _VERSION_KEYS.items():
            for key in keys:
                if not is_na(doc.get(key)):
                    out[name] = str(doc[key]).strip()
                    break
    else:
        for name, pattern in _VERSION_TEXT.items():
            match = pattern.search(stripped)
            if match and not is_na(match.group(1)):
                out[name] = match.group(1).strip()
        if out["amd_smi"] is None and out["rocm"] is None:
            raise ProbeError(command, f"no version found; it printed first: "
                             f"{first_line(stripped)!r}", CHECK, FIX_AMD_SMI)
    out["driver"] = driver_version_text(out["driver"])
    return out


def parse_amd_smi_topology(text: str, command: str = "amd-smi topology --json") -> dict:
    """Return ``{gpu_index: [xgmi peer indices]}`` from ``amd-smi topology --json``.

    Handles the ``links`` list (ROCm >= 6.1) and the older ``link_type`` map
    (``{"gpu_1": "XGMI"}``).
    """
    peers: dict[int, list[int]] = {}
    records = _gpu_records(_load_json(text, command, FIX_AMD_SMI), command)
    for position, record in enumerate(records):
        index = _int_or_none(record.get("gpu"))
        index = position if index is None else index
        found: list[int] = []
        links = record.get("links")
        if isinstance(links, list):
            for link in links:
                if isinstance(link, dict) and str(link.get("link_type", "")).upper() == "XGMI":
                    peer = _int_or_none(link.get("gpu"))
                    if peer is not None and peer != index:
                        found.append(peer)
        elif isinstance(record.get("link_type"), dict):
            for key, kind in record["link_type"].items():
                match = re.match(r"gpu_(\d+)$", str(key))
                if match and str(kind).upper() == "XGMI" and int(match.group(1)) != index:
                    found.append(int(match.group(1)))
        peers[index] = sorted(set(found))
    return peers


def _lower_keys(record: dict) -> dict:
    return {str(k).strip().lower(): v for k, v in record.items()}


_LINK_KEY = re.compile(r"link type between drm devices (\d+) and (\d+)")


def parse_rocm_smi(text: str, command: str = "rocm-smi --json") -> dict:
    """Parse ``rocm-smi ... --json``: ``{"card0": {...}, "system": {...}}``.

    Returns ``{"gpus": [...], "driver_version": str|None, "xgmi": {index: [peers]}|None}``.
    Key spellings differ between versions ("Card series" / "Card Series"), so keys are matched
    case-insensitively; the device id is ``Device ID`` (ROCm 6.x) or ``GPU ID`` (ROCm 5.x), and
    ``GFX Version`` values like ``gfx9010`` are normalized (:func:`gfx_name`).
    """
    doc = _load_json(text, command, FIX_ROCM_SMI)
    if not isinstance(doc, dict):
        raise ProbeError(command, f"expected a JSON object, found {type(doc).__name__}",
                         CHECK, FIX_ROCM_SMI)
    return rocm_smi_cards(doc, command)


def rocm_smi_cards(doc: dict, command: str, source: str = "rocm-smi") -> dict:
    """The result of :func:`parse_rocm_smi` from its decoded document (``card<N>`` objects and
    ``system``); the text parser builds the same document from ``GPU[N] : key: value`` lines."""
    gpus = []
    cards = sorted(
        (k for k in doc if re.match(r"^card\d+$", str(k))), key=lambda k: int(str(k)[4:])
    )
    for key in cards:
        if not isinstance(doc[key], dict):
            raise ProbeError(command, f"{key} is not an object", CHECK, FIX_ROCM_SMI)
        card = _lower_keys(doc[key])
        vram = card.get("vram total memory (b)")
        product = (clean(card.get("card series")) or clean(card.get("device name"))
                   or clean(card.get("card model")))
        gpus.append({
            "index": int(key[4:]),
            "product": product,
            "gfx_target": gfx_name(card.get("gfx version")),
            "device_id": (clean(card.get("device id")) or clean(card.get("gpu id"))
                          or clean(card.get("card model"))),
            "vram_total_bytes": to_bytes(vram, "B", command, CHECK),
            "bdf": normalize_bdf(card.get("pci bus")),
            "numa_node": _int_or_none(card.get("(topology) numa node")),
            "driver_version": None,
            "source": source,
        })
    system = _lower_keys(doc["system"]) if isinstance(doc.get("system"), dict) else {}
    xgmi: dict[int, list[int]] | None = None
    for key, kind in system.items():
        match = _LINK_KEY.search(key)
        if not match:
            continue
        xgmi = xgmi if xgmi is not None else {g["index"]: [] for g in gpus}
        if str(kind).strip().upper() == "XGMI":
            a, b = int(match.group(1)), int(match.group(2))
            xgmi.setdefault(a, []).append(b)
            xgmi.setdefault(b, []).append(a)
    if xgmi is not None:
        xgmi = {k: sorted(set(v)) for k, v in xgmi.items()}
    driver = clean(system.get("driver version"))
    for gpu in gpus:
        gpu["driver_version"] = driver
    return {"gpus": gpus, "driver_version": driver, "xgmi": xgmi}


def _properties(path: str) -> dict:
    props = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2:
                    props[parts[0]] = parts[1]
    except OSError:
        return {}
    return props


def _kfd_nodes(root: str) -> dict[int, dict]:
    """KFD topology nodes that are GPUs: ``{node_id: {"bdf", "gfx_target", "xgmi_to"}}``."""
    nodes = {}
    base = rooted(root, "/sys/class/kfd/kfd/topology/nodes")
    for node_dir in glob.glob(os.path.join(base, "*")):
        name = os.path.basename(node_dir)
        if not name.isdigit():
            continue
        props = _properties(os.path.join(node_dir, "properties"))
        target = _int_or_none(props.get("gfx_target_version"))
        if not target:
            continue  # a CPU node
        loc, dom = _int_or_none(props.get("location_id")), _int_or_none(props.get("domain")) or 0
        bdf = None
        if loc is not None:
            bdf = f"{dom:04x}:{(loc >> 8) & 0xFF:02x}:{(loc >> 3) & 0x1F:02x}.{loc & 0x7}"
        xgmi_to = []
        for link in glob.glob(os.path.join(node_dir, "io_links", "*", "properties")):
            link_props = _properties(link)
            if link_props.get("type") == "11":  # HSA_IOLINK_TYPE_XGMI
                to = _int_or_none(link_props.get("node_to"))
                if to is not None:
                    xgmi_to.append(to)
        for link in glob.glob(os.path.join(node_dir, "p2p_links", "*", "properties")):
            link_props = _properties(link)
            if link_props.get("type") == "11":
                to = _int_or_none(link_props.get("node_to"))
                if to is not None:
                    xgmi_to.append(to)
        nodes[int(name)] = {"bdf": bdf, "gfx_target": gfx_name(target), "xgmi_to": xgmi_to}
    return nodes


def sysfs_gpus(root: str) -> dict:
    """Read AMD GPUs from ``/sys/class/drm/card*/device`` and ``/sys/class/kfd`` under ``root``.

    Returns ``{"gpus": [...], "xgmi": {bdf: [peer bdfs]}|None}``.
    """
    fix = "check the amdgpu driver is loaded (lsmod | grep amdgpu) and /sys is mounted"
    kfd = _kfd_nodes(root)
    by_bdf = {n["bdf"]: n for n in kfd.values() if n["bdf"]}
    gpus: list[dict] = []
    cards = [c for c in glob.glob(rooted(root, "/sys/class/drm/card*"))
             if re.match(r"^card\d+$", os.path.basename(c))]
    for card in sorted(cards, key=lambda c: int(os.path.basename(c)[4:])):
        dev = "/" + os.path.relpath(os.path.join(card, "device"), root)
        vendor = read_int(root, dev + "/vendor", CHECK, fix, base=16)
        if vendor != AMD_VENDOR:
            continue
        device_id = read_int(root, dev + "/device", CHECK, fix, base=16)
        uevent = read_text(root, dev + "/uevent") or ""
        slot = re.search(r"^PCI_SLOT_NAME=(\S+)$", uevent, re.MULTILINE)
        bdf = normalize_bdf(slot.group(1)) if slot else None
        if bdf is None:
            bdf = normalize_bdf(os.path.basename(os.path.realpath(rooted(root, dev))))
        numa = read_int(root, dev + "/numa_node", CHECK, fix)
        product = read_text(root, dev + "/product_name") or DEVICE_NAMES.get(device_id or -1)
        node = by_bdf.get(bdf, {})
        gpus.append({
            "index": len(gpus),
            "product": clean(product),
            "gfx_target": node.get("gfx_target"),
            "device_id": f"0x{device_id:04x}" if device_id is not None else None,
            "vram_total_bytes": read_int(root, dev + "/mem_info_vram_total", CHECK, fix),
            "bdf": bdf,
            "numa_node": numa if numa is not None and numa >= 0 else None,
            "driver_version": None,
            "pcie_link_speed": read_text(root, dev + "/current_link_speed"),
            "source": "sysfs",
        })
    xgmi = None
    if kfd:
        xgmi = {}
        for node in kfd.values():
            if node["bdf"]:
                xgmi[node["bdf"]] = sorted(
                    kfd[t]["bdf"] for t in node["xgmi_to"] if t in kfd and kfd[t]["bdf"]
                )
    return {"gpus": gpus, "xgmi": xgmi}


def xgmi_by_bdf(gpus: list[dict], peers: dict[int, list[int]] | None) -> dict | None:
    """Turn ``{index: [peer indices]}`` into ``{bdf: [peer bdfs]}`` (None stays None)."""
    if peers is None:
        return None
    bdf = {g["index"]: g["bdf"] or f"gpu{g['index']}" for g in gpus}
    return {bdf.get(i, f"gpu{i}"): sorted(bdf.get(p, f"gpu{p}") for p in ps)
            for i, ps in peers.items()}


def xgmi_summary(links: dict | None) -> dict:
    """Summarize an xGMI link map: available, links per GPU, full mesh or not."""
    if not links:
        return {"available": False, "links": {}, "full_mesh": None, "min_peers": None}
    count = len(links)
    min_peers = min(len(v) for v in links.values())
    return {
        "available": True,
        "links": links,
        "full_mesh": count > 1 and min_peers == count - 1,
        "min_peers": min_peers,
    }


def rocm_version_from_tree(root: str) -> str | None:
    """The ROCm release from ``/opt/rocm/.info/version`` (``6.2.2-116`` -> ``6.2.2``)."""
    text = read_text(root, "/opt/rocm/.info/version")
    if not text:
        return None
    return text.split("-")[0].strip() or None
