# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE parsers for the plain-text outputs of amd-smi and rocm-smi (not a public API).

Support bundles and bug reports hold the text forms, and old tools have no ``--json``:

* ``amd-smi static`` and ``amd-smi list``: ``GPU: N`` records with indented ``KEY: value``
  sections, read into the sections of the JSON form and mapped by the same code
  (:func:`._amdgpu.parse_amd_smi_static`'s checks apply: a record without the product, gfx target
  and VRAM fields is refused). ``amd-smi version`` text is read by
  :func:`._amdgpu.parse_amd_smi_version` itself.
* ``rocm-smi`` with ``--showproductname``, ``--showbus``, ``--showmeminfo vram``,
  ``--showtoponuma``, ``--showdriverversion``, ``--showid``: ``GPU[N] : key: value`` lines, read
  into the JSON document's ``card<N>`` objects.
* ``rocm-smi`` with no option (the "Concise Info" table): the GPU indices and, from ROCm 6.x's
  ``(DID, GUID)`` column, the device id (the product named from it by
  :data:`._amdgpu.DEVICE_NAMES`); no gfx target, no VRAM size.

Input that fits none of these is refused with :class:`ProbeError` quoting its first line. So is
output cut short: an ``amd-smi static`` record with some but not all of the product, gfx target
and VRAM fields, or lacking a field the first record has; rocm-smi text without its closing
``End of ROCm SMI Log`` line, a GPU lacking a key the first GPU has, a Concise Info table without
its closing rule.
"""

from __future__ import annotations

import re

from ansible_collections.inferops.disagg.plugins.module_utils._amdgpu import (
    CHECK,
    DEVICE_NAMES,
    FIX_AMD_SMI,
    FIX_ROCM_SMI,
    _static_gpu,
    first_line,
    normalize_bdf,
    rocm_smi_cards,
)
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError, clean

_RECORD = re.compile(r"^GPU:\s*(\d+)\s*$")
_OTHER_RECORD = re.compile(r"^[A-Z]+:\s*\d+\s*$")  # CPU: 0, CPU CORE: 3 (amd-smi on APUs)
_KEY = re.compile(r"^(?P<key>[A-Za-z0-9_ ()/.-]+?):(?:\s+(?P<value>.*?))?\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t").replace("\t", "    "))


def _nest(lines: list[str]) -> dict:
    """``KEY: value`` lines indented under ``SECTION:`` lines -> nested dict, keys lower case."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for line in lines:
        match = _KEY.match(line.strip())
        if not match:
            continue  # list items, table rows: not fields the parsers use
        depth = _indent(line)
        while stack[-1][0] >= depth:
            stack.pop()
        key, value = match.group("key").strip().lower(), match.group("value")
        if value is None or value == "":
            child: dict = {}
            stack[-1][1][key] = child
            stack.append((depth, child))
        else:
            stack[-1][1][key] = value
    return root


def amd_smi_text_records(text: str, command: str) -> list[dict]:
    """The ``GPU: N`` records of an amd-smi text output as dicts (``{"gpu": N, "asic": {...}}``).

    Raises:
        ProbeError: nothing printed, or no ``GPU: N`` line (quoting the first line).
    """
    if text is None or not text.strip():
        raise ProbeError(command, "printed nothing", CHECK, FIX_AMD_SMI)
    records: list[dict] = []
    body: list[str] | None = None
    for line in text.splitlines():
        head = _RECORD.match(line.strip()) if _indent(line) == 0 else None
        if head:
            body = []
            records.append({"gpu": int(head.group(1)), "_lines": body})
        elif _indent(line) == 0 and _OTHER_RECORD.match(line.strip()):
            body = None  # a CPU record of amd-smi on an APU host
        elif body is not None:
            body.append(line)
    if not records:
        raise ProbeError(command, "no 'GPU: N' record in the text; it printed first: "
                         f"{first_line(text)!r}", CHECK, FIX_AMD_SMI)
    out = []
    for record in records:
        lines = record.pop("_lines")
        out.append(dict(_nest(lines), gpu=record["gpu"]))
    return out


#: The fields of ``amd-smi static`` the GPU dicts come from (section, key).
STATIC_FIELDS = (("asic", "market_name"), ("asic", "target_graphics_version"),
                 ("asic", "device_id"), ("bus", "bdf"), ("numa", "node"), ("vram", "size"),
                 ("driver", "version"))


def _fields(record: dict, fields: tuple[tuple[str, str], ...]) -> set[str]:
    return {f"{section}.{key}" for section, key in fields
            if isinstance(record.get(section), dict) and key in record[section]}


def check_same_fields(records: list[dict], fields: tuple[tuple[str, str], ...],
                      command: str, fix: str) -> None:
    """Refuse records that lack a field the first record has: text output cut in a record
    (e.g. inside GPU 1's VRAM section) would otherwise give that GPU a None VRAM size."""
    if not records:
        return
    first = _fields(records[0], fields)
    for position, record in enumerate(records[1:], 1):
        missing = sorted(first - _fields(record, fields))
        if missing:
            raise ProbeError(command, f"GPU record {position} lacks {', '.join(missing)}, which "
                             "GPU record 0 has (output cut?)", CHECK, fix)


def parse_amd_smi_static_text(text: str, command: str = "amd-smi static") -> list[dict]:
    """Parse the text of ``amd-smi static``: the same GPU dicts as the JSON parser.

    A record lacking a field the first record has (the output was cut) is refused.
    """
    records = amd_smi_text_records(text, command)
    fix = "save the whole output of `amd-smi static` again"
    check_same_fields(records, STATIC_FIELDS, command, fix)
    for position, record in enumerate(records):
        _check_identity(record, position, command, fix)
    return [_static_gpu(record, position, command) for position, record in enumerate(records)]


def _check_identity(record: dict, position: int, command: str, fix: str) -> None:
    """In the text form the product, gfx target and VRAM fields come all or none (none: another
    command, refused by the shared check); some of them means the output was cut in between."""
    have = {"product": bool(_fields(record, (("asic", "market_name"), ("board", "product_name")))),
            "gfx target": bool(_fields(record, (("asic", "target_graphics_version"),))),
            "VRAM size": bool(_fields(record, (("vram", "size"),)))}
    if any(have.values()) and not all(have.values()):
        missing = [name for name, present in have.items() if not present]
        raise ProbeError(command, f"GPU record {position} has no {', '.join(missing)} field "
                         "(output cut?)", CHECK, fix)


def parse_amd_smi_list_text(text: str, command: str = "amd-smi list") -> list[dict]:
    """Parse the text of ``amd-smi list``: ``[{"index", "bdf", "uuid", "kfd_id", "node_id",
    "partition_id"}]`` (values None when not printed).

    Raises:
        ProbeError: a record without a ``BDF`` (not ``amd-smi list`` output).
    """
    gpus = []
    for record in amd_smi_text_records(text, command):
        if "bdf" not in record:
            raise ProbeError(command, f"GPU {record['gpu']} has no BDF line: this is not the "
                             "output of `amd-smi list`", CHECK,
                             "save or run `amd-smi list` itself")
        gpus.append({
            "index": record["gpu"],
            "bdf": normalize_bdf(record.get("bdf")),
            "uuid": clean(record.get("uuid")),
            "kfd_id": clean(record.get("kfd_id")),
            "node_id": clean(record.get("node_id")),
            "partition_id": clean(record.get("partition_id")),
        })
    return gpus


_SMI_LINE = re.compile(
    r"^(?:GPU|card)\[(?P<index>\d+)\]\s*:\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*)$")
_SYSTEM_LINE = re.compile(r"^(?P<key>Driver version)\s*:\s*(?P<value>.+)$", re.IGNORECASE)
_CONCISE_HEAD = re.compile(r"^(?:Device|GPU)\s+\S")
_DID = re.compile(r"^(0x[0-9a-fA-F]{4}),?$")


def _concise(text: str, command: str) -> dict:
    """The GPUs of rocm-smi's "Concise Info" table (rows between the header and the next rule)."""
    gpus: list[dict] = []
    in_table = closed = False
    for raw in text.splitlines():
        line = raw.strip()
        if not in_table:
            in_table = bool(_CONCISE_HEAD.match(line))
            continue
        if line.startswith("="):
            if gpus:
                closed = True
                break
            continue  # the rule under the (two-line) header
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue  # the header's second line "(DID, GUID) ..."
        did = next((m.group(1).lower() for f in fields[1:4] if (m := _DID.match(f))), None)
        gpus.append({
            "index": int(fields[0]), "product": DEVICE_NAMES.get(int(did, 16)) if did else None,
            "gfx_target": None, "device_id": did, "vram_total_bytes": None, "bdf": None,
            "numa_node": None, "driver_version": None, "source": "rocm-smi concise",
        })
    if not gpus:
        raise ProbeError(command, "a Concise Info table without GPU rows; it printed first: "
                         f"{first_line(text)!r}", CHECK, FIX_ROCM_SMI)
    if not closed:
        raise ProbeError(command, f"the Concise Info table stops after GPU {gpus[-1]['index']} "
                         "without its closing '=====' line (output cut?)", CHECK, FIX_ROCM_SMI)
    return {"gpus": gpus, "driver_version": None, "xgmi": None}


def _check_same_keys(cards: dict[str, dict], command: str) -> None:
    """rocm-smi prints each section for every GPU in turn: a card lacking a key that card 0 has
    means the output was cut inside a section."""
    first = cards.get("card0") or next(iter(cards.values()))
    for name, card in cards.items():
        missing = sorted(set(first) - set(card))
        if missing:
            raise ProbeError(command, f"GPU[{name[4:]}] lacks {', '.join(missing)}, which the "
                             "first GPU has (output cut?)", CHECK,
                             "save the whole output of the rocm-smi command again")


def parse_rocm_smi_text(text: str, command: str = "rocm-smi") -> dict:
    """Parse rocm-smi's text output: ``GPU[N] : key: value`` lines (``--showproductname`` and the
    other ``--show*`` options) or the Concise Info table (no option).

    Returns what :func:`._amdgpu.parse_rocm_smi` returns (``xgmi`` is None: the text topology
    matrix is not read).

    Raises:
        ProbeError: nothing printed, or neither form (quoting the first line).
    """
    if text is None or not text.strip():
        raise ProbeError(command, "printed nothing", CHECK, FIX_ROCM_SMI)
    doc: dict[str, dict] = {}
    system: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = _SMI_LINE.match(line)
        if match:
            doc.setdefault(f"card{match.group('index')}", {})[match.group("key")] = \
                match.group("value").strip()
            continue
        match = _SYSTEM_LINE.match(line)
        if match:
            system[match.group("key")] = match.group("value").strip()
    if "ROCm System Management Interface" in text and "End of ROCm SMI Log" not in text:
        raise ProbeError(command, "no closing 'End of ROCm SMI Log' line after "
                         f"{first_line(text)!r} (output cut?)", CHECK,
                         "save the whole output of the rocm-smi command again")
    if doc:
        _check_same_keys(doc, command)
        result = rocm_smi_cards(dict(doc, system=system), command, "rocm-smi text")
        result["xgmi"] = None
        return result
    if "Concise Info" in text or any(_CONCISE_HEAD.match(x.strip()) for x in text.splitlines()):
        return _concise(text, command)
    raise ProbeError(command, "neither 'GPU[N] : key: value' lines nor a Concise Info table; it "
                     f"printed first: {first_line(text)!r}", CHECK, FIX_ROCM_SMI)
