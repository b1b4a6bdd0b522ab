# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE: GPU and RDMA facts from a directory of saved command outputs (not a public API).

A support bundle or a bug report holds the tools' outputs, not the host. Saved under the file
names of :data:`GPU_FILES` and :data:`RDMA_FILES` in one directory per host, they give the same
facts as the ``amdgpu_facts``/``rdma_facts`` modules (option ``saved_outputs``), which the
preflight evaluation (``_preflight.evaluate``) checks like a live host's::

    amd-smi-static.json | amd-smi-static.txt     amd-smi static [--json]
    amd-smi-version.json | amd-smi-version.txt   amd-smi version [--json]
    amd-smi-topology.json                        amd-smi topology --json
    amd-smi-list.txt                             amd-smi list   (GPU count and BDFs only)
    rocm-smi.json | rocm-smi.txt                 rocm-smi [--show* ...] [--json], or the
                                                 Concise Info table (rocm-smi alone)
    ibv_devinfo-v.txt                            ibv_devinfo -v
    ibstat.txt, show_gids.txt,                   ibstat; show_gids;
    rdma-link.json | rdma-link.txt               rdma [-j] link show

The first source present wins, in the order above (for RDMA: ``ibv_devinfo -v``, else the
ibstat/show_gids/rdma link trio). Nothing of the machine running the code is read: device nodes,
``uverbs`` nodes and sysfs are not in the outputs, so those facts are None ("not known") and the
checks that need them give no finding. Errors are :class:`ProbeError` naming the file and the
command it should hold.

:func:`evaluate_dir` runs the preflight GPU/RDMA checks over one host's directory and returns
the findings (``HOST: CHECK: found X, expected Y; fix: Z``), the core of a support-bundle
"doctor".
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ansible_collections.inferops.disagg.plugins.module_utils._amdgpu import (
    parse_amd_smi_static,
    parse_amd_smi_topology,
    parse_amd_smi_version,
    parse_rocm_smi,
    xgmi_by_bdf,
    xgmi_summary,
)
from ansible_collections.inferops.disagg.plugins.module_utils._amdgpu_text import (
    parse_amd_smi_list_text,
    parse_amd_smi_static_text,
    parse_rocm_smi_text,
)
from ansible_collections.inferops.disagg.plugins.module_utils._preflight import evaluate
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError
from ansible_collections.inferops.disagg.plugins.module_utils._rdma import (
    parse_ibv_devinfo,
    summarize,
)
from ansible_collections.inferops.disagg.plugins.module_utils._rdma_text import (
    devices_from_outputs,
)

#: file name -> the command whose output it must hold (GPU facts, in the order tried).
GPU_FILES: dict[str, str] = {
    "amd-smi-static.json": "amd-smi static --json",
    "amd-smi-static.txt": "amd-smi static",
    "amd-smi-version.json": "amd-smi version --json",
    "amd-smi-version.txt": "amd-smi version",
    "amd-smi-topology.json": "amd-smi topology --json",
    "amd-smi-list.txt": "amd-smi list",
    "rocm-smi.json": "rocm-smi --json",
    "rocm-smi.txt": "rocm-smi",
}
#: file name -> command (RDMA facts).
RDMA_FILES: dict[str, str] = {
    "ibv_devinfo-v.txt": "ibv_devinfo -v",
    "ibstat.txt": "ibstat",
    "show_gids.txt": "show_gids",
    "rdma-link.json": "rdma -j link show",
    "rdma-link.txt": "rdma link show",
}
CHECK_DIR = "saved outputs"
FIX_DIR = ("save the outputs under the names " + ", ".join([*GPU_FILES, *RDMA_FILES])
           + " (one directory per host)")


def _read(directory: str, name: str) -> str | None:
    """The text of ``directory/name``; None when absent."""
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _label(directory: str, name: str, table: dict[str, str]) -> str:
    """How errors name a saved file: ``<dir>/<name> (<command>)``."""
    return f"{os.path.join(directory, name)} ({table[name]})"


def _check_dir(directory: str, check: str) -> None:
    if not os.path.isdir(directory):
        raise ProbeError(directory, "saved outputs directory not found", check, FIX_DIR)


def _first(directory: str, names: tuple[str, ...]) -> tuple[str, str] | None:
    """``(name, text)`` of the first of ``names`` present in ``directory``."""
    for name in names:
        text = _read(directory, name)
        if text is not None:
            return name, text
    return None


def _listed_gpus(text: str, command: str) -> list[dict]:
    """``amd-smi list`` GPUs in the GPU shape: index and BDF known, the rest None."""
    return [{"index": g["index"], "product": None, "gfx_target": None, "device_id": None,
             "vram_total_bytes": None, "bdf": g["bdf"], "numa_node": None,
             "driver_version": None, "source": "amd-smi list"}
            for g in parse_amd_smi_list_text(text, command)]


def _gpu_list(directory: str, facts: dict) -> list[dict] | None:
    """The GPUs from the first GPU-listing file present (source set in ``facts``)."""
    parsers = {
        "amd-smi-static.json": ("amd-smi", parse_amd_smi_static),
        "amd-smi-static.txt": ("amd-smi", parse_amd_smi_static_text),
        "rocm-smi.json": ("rocm-smi", lambda t, c: parse_rocm_smi(t, c)["gpus"]),
        "rocm-smi.txt": ("rocm-smi", lambda t, c: parse_rocm_smi_text(t, c)["gpus"]),
        "amd-smi-list.txt": ("amd-smi list", _listed_gpus),
    }
    found = _first(directory, tuple(parsers))
    if found is None:
        return None
    name, text = found
    source, parser = parsers[name]
    facts["source"] = source
    facts["fallbacks"].append(f"GPUs from {name}")
    return parser(text, _label(directory, name, GPU_FILES))


def gpu_facts_from_dir(directory: str) -> dict:
    """The ``amdgpu`` facts (as ``amdgpu_facts`` returns them) from saved outputs.

    ``tools`` says which amd-smi/rocm-smi outputs were saved (file names, not paths on a host);
    ``devices`` is ``{"kfd": None, "dri_render": None}`` (not in the outputs).

    Raises:
        ProbeError: the directory is missing, holds no GPU-listing output, or a file does not
            hold what its name says (message names the file and the command).
    """
    _check_dir(directory, "gpu.facts")
    present = [n for n in GPU_FILES if os.path.isfile(os.path.join(directory, n))]
    facts: dict = {
        "source": "none", "fallbacks": [], "saved_outputs": directory,
        "tools": {"amd_smi": next((n for n in present if n.startswith("amd-smi")), None),
                  "rocm_smi": next((n for n in present if n.startswith("rocm-smi")), None)},
        "versions": {"rocm": None, "amd_smi": None, "amdsmi_library": None, "driver": None},
        "devices": {"kfd": None, "dri_render": None},
    }
    gpus = _gpu_list(directory, facts)
    if gpus is None:
        listings = [n for n in GPU_FILES if "version" not in n and "topology" not in n]
        raise ProbeError(directory, "no GPU listing among the saved outputs", "gpu.facts",
                         "save one of " + ", ".join(listings))
    version = _first(directory, ("amd-smi-version.json", "amd-smi-version.txt"))
    if version:
        parsed = parse_amd_smi_version(version[1], _label(directory, version[0], GPU_FILES))
        facts["versions"].update({k: v for k, v in parsed.items() if v})
    topology = _read(directory, "amd-smi-topology.json")
    links = None
    if topology is not None and facts["source"] == "amd-smi":
        links = xgmi_by_bdf(gpus, parse_amd_smi_topology(
            topology, _label(directory, "amd-smi-topology.json", GPU_FILES)))
    drivers = [g.get("driver_version") for g in gpus if g.get("driver_version")]
    if drivers:
        facts["versions"]["driver"] = drivers[0]
    facts.update(gpus=gpus, gpu_count=len(gpus), xgmi=xgmi_summary(links))
    return facts


def rdma_facts_from_dir(directory: str) -> dict:
    """The ``rdma`` facts (as ``rdma_facts`` returns them) from saved outputs; ``uverbs`` None.

    Raises:
        ProbeError: the directory is missing, holds none of the RDMA outputs, or a file does
            not hold what its name says.
    """
    _check_dir(directory, "rdma.facts")
    facts: dict = {"source": "none", "fallbacks": [], "devices": [], "saved_outputs": directory}
    ibv = _read(directory, "ibv_devinfo-v.txt")
    if ibv is not None:
        facts.update(source="ibv_devinfo", devices=parse_ibv_devinfo(
            ibv, _label(directory, "ibv_devinfo-v.txt", RDMA_FILES)))
    else:
        link = _first(directory, ("rdma-link.json", "rdma-link.txt"))
        texts = {"ibstat": _read(directory, "ibstat.txt"),
                 "show_gids": _read(directory, "show_gids.txt"),
                 "rdma_link": link[1] if link else None}
        if not any(v is not None for v in texts.values()):
            raise ProbeError(directory, "none of the RDMA outputs saved", "rdma.facts",
                             "save " + ", ".join(RDMA_FILES))
        try:
            devices = devices_from_outputs(**texts)
        except ProbeError as exc:
            files = {"ibstat": "ibstat.txt", "show_gids": "show_gids.txt"}
            name = files.get(exc.source, link[0] if link else "")
            raise ProbeError(os.path.join(directory, name) + f" ({exc.source})", exc.problem,
                             exc.check, exc.fix) from None
        facts.update(source="+".join(k for k, v in texts.items() if v is not None),
                     devices=devices)
    facts["uverbs"] = None
    facts.update(summarize(facts["devices"]))
    return facts


def _result(key: str, read: Callable[[str], dict], directory: str) -> dict:
    """A fact module's result for ``evaluate``: the facts, or the failure as ``msg``."""
    try:
        return {"ansible_facts": {key: read(directory)}}
    except ProbeError as exc:
        return {"failed": True, "msg": str(exc)}


def evaluate_dir(directory: str, host: str | None = None,
                 thresholds: dict | None = None) -> list[dict]:
    """Preflight findings for one host's saved outputs (what a support-bundle "doctor" prints).

    ``host`` defaults to the directory's name. The GPU checks run when a GPU output is saved,
    the RDMA checks when an RDMA output is; host tunables, Docker and the KV path are not in
    the outputs and are not checked. A file that does not hold what its name says is a
    ``gpu.facts``/``rdma.facts`` finding naming the file and the command.

    Raises:
        ProbeError: ``directory`` is not a directory.
    """
    _check_dir(directory, "saved outputs")
    host = host or os.path.basename(os.path.normpath(directory))
    names = set(os.listdir(directory))
    t = dict(thresholds or {}, check_tunables=False, check_docker=False, check_kv_path=False)
    t.setdefault("check_gpu", bool(names & set(GPU_FILES)))
    t.setdefault("check_rdma", bool(names & set(RDMA_FILES)))
    results = {
        "amdgpu": _result("amdgpu", gpu_facts_from_dir, directory) if t["check_gpu"] else {},
        "rdma": _result("rdma", rdma_facts_from_dir, directory) if t["check_rdma"] else {},
    }
    return evaluate(host, results, t)
