# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE preflight evaluation: facts + thresholds -> findings (not a public API).

A finding is ``{"host", "check", "found", "expected", "fix"}`` and renders as one line::

    HOST: CHECK: found X, expected Y; fix: Z

Each check is evaluated once per host and aggregates every offending device into one finding, so
one planted fault gives one line. Checks that cannot be decided (a fact the host does not expose)
give no finding; the per-host JSON report still shows the facts they would have used.

The model directory check (``host.model_path``) takes what it requires from ``model_require``:
``config`` (config.json), ``tokenizer`` (a vocabulary file SGLang's tokenizer loader, transformers'
``AutoTokenizer``, can read: one of ``TOKENIZER_FILES``; tokenizer_config.json alone only names
the class) and ``weights`` (``*.safetensors``). config.json and weights come from
``host_tunables``' ``model`` facts, the tokenizer from the role's ``ansible.builtin.find`` listing
of the directory (``results["model_files"]``).

The KV path checks (prefill->decode probe pairs) live in ``_preflight_kv``, the finding
primitives in ``_findings``.
"""

from __future__ import annotations

import re

from ansible_collections.inferops.disagg.plugins.module_utils._findings import (
    GIB,
    cell,
    finding,
    human_bytes,
    render,
)
from ansible_collections.inferops.disagg.plugins.module_utils._preflight_kv import (
    evaluate_kv_path,
    kv_markdown,
)

__all__ = ["DEFAULTS", "MODEL_REQUIRE", "TOKENIZER_FILES", "evaluate", "markdown", "render",
           "version_tuple"]

DEFAULTS: dict = {
    "check_gpu": True,
    "check_rdma": True,
    "check_tunables": True,
    "check_docker": True,
    "gpu_count": 8,
    "gpu_product": "MI300X",
    "gpu_gfx_target": "gfx942",
    "gpu_min_vram_gib": 0,
    "gpu_min_rocm_version": "6.2",
    "gpu_require_amd_smi": True,
    "gpu_require_device_nodes": True,
    "gpu_require_xgmi_full_mesh": True,
    "rdma_devices": [],
    "rdma_min_devices": 8,
    "rdma_link_layer": "Ethernet",
    "rdma_min_active_mtu": 4096,
    "rdma_min_rate_gbps": 0,
    "rdma_gid_index": None,
    "rdma_require_uverbs": True,
    "numa_balancing": 0,
    "iommu_modes": ["pt"],
    "memlock_unlimited": True,
    "min_nofile": 65536,
    "min_max_map_count": 65530,
    "cpu_governor": "performance",
    "min_hugepages": 0,
    "require_clock_sync": False,
    "model_path": None,
    "model_require": ["config", "tokenizer", "weights"],
    "model_min_free_gib": 0,
    "ports_free": [],
    "docker_require_memlock_default_unlimited": False,
    "check_kv_path": True,
    "kv_min_gbps": 1,
    "kv_ib_min_gbps": 0,
}

# Files any one of which gives transformers' AutoTokenizer (SGLang's loader) a vocabulary:
# tokenizer.json (fast tokenizers), tokenizer.model (SentencePiece), vocab.json (byte-level BPE,
# with merges.txt), vocab.txt (WordPiece), tiktoken.model (tiktoken models with remote code).
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "tiktoken.model",
)
# What the model directory check can require (model_require), as a finding's "expected" says it.
MODEL_REQUIRE: dict[str, str] = {
    "config": "config.json",
    "tokenizer": f"a tokenizer ({', '.join(TOKENIZER_FILES[:-1])} or {TOKENIZER_FILES[-1]})",
    "weights": "*.safetensors",
}


def version_tuple(text: object) -> tuple[int, ...] | None:
    """``"6.2.2-116"`` -> ``(6, 2, 2)``; None when there is no leading number."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", str(text or ""))
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _module_failed(result: object) -> str | None:
    """The failure message of a module result, also when ``failed_when: false`` hid the failure
    (the role registers the fact modules that way so one broken probe does not stop the others)."""
    if not isinstance(result, dict) or result.get("skipped"):
        return None
    if result.get("failed") or (result and "ansible_facts" not in result):
        return str(result.get("msg") or "module failed without a message")
    return None


def _facts(result: object, key: str) -> dict:
    if not isinstance(result, dict):
        return {}
    facts = result.get("ansible_facts", {}).get(key)
    if facts is None:
        facts = result.get(key, {})
    return facts if isinstance(facts, dict) else {}


def _ports(devices: list[dict], wanted: list[str]) -> list[tuple[str, dict]]:
    chosen = [d for d in devices if not wanted or d.get("name") in wanted]
    return [(f"{d['name']}/{p['port']}", p) for d in chosen for p in d.get("ports", [])]


def evaluate_gpu(host: str, result: object, t: dict) -> list[dict]:
    failed = _module_failed(result)
    if failed:
        return [finding(host, "gpu.facts", failed, "GPU facts from amd-smi, rocm-smi or sysfs",
                        "see the message; run the named command by hand on the host")]
    facts = _facts(result, "amdgpu")
    gpus = facts.get("gpus", [])
    out = []
    tools = facts.get("tools", {})
    if t["gpu_require_amd_smi"] and not tools.get("amd_smi"):
        fell = facts.get("source") or "none"
        out.append(finding(host, "gpu.amd_smi", f"amd-smi absent (facts from {fell})",
                           "amd-smi on PATH or in /opt/rocm/bin",
                           "install amd-smi-lib from the ROCm repository "
                           "(apt-get install amd-smi-lib) or set preflight_gpu_require_amd_smi: "
                           "false"))
    if t["gpu_count"] is not None and len(gpus) != int(t["gpu_count"]):
        present = ", ".join(g.get("bdf") or f"gpu{g.get('index')}" for g in gpus) or "none"
        out.append(finding(host, "gpu.count", f"{len(gpus)} GPUs ({present})",
                           f"{t['gpu_count']} GPUs",
                           "look for the missing GPU in `dmesg | grep -i amdgpu` and `lspci -d "
                           "1002:`; reseat or replace it, or map all /dev/dri nodes into the "
                           "container"))
    if t["gpu_product"]:
        bad = sorted({str(g.get("product")) for g in gpus if g.get("product") is not None
                      and t["gpu_product"].lower() not in str(g["product"]).lower()})
        if bad:
            out.append(finding(host, "gpu.product", ", ".join(bad),
                               f"product matching {t['gpu_product']!r}",
                               "schedule this role on hosts with the expected GPUs, or change "
                               "preflight_gpu_product"))
    if t["gpu_gfx_target"]:
        bad = sorted({str(g["gfx_target"]) for g in gpus if g.get("gfx_target")
                      and g["gfx_target"] != t["gpu_gfx_target"]})
        if bad:
            out.append(finding(host, "gpu.gfx_target", ", ".join(bad), t["gpu_gfx_target"],
                               "use an image built for this gfx target, or change "
                               "preflight_gpu_gfx_target"))
    if t["gpu_min_vram_gib"]:
        small = [g for g in gpus if g.get("vram_total_bytes") is not None
                 and g["vram_total_bytes"] < t["gpu_min_vram_gib"] * GIB]
        if small:
            found = ", ".join(f"{g.get('bdf')} {human_bytes(g['vram_total_bytes'])}"
                              for g in small)
            out.append(finding(host, "gpu.vram", found, f">= {t['gpu_min_vram_gib']} GiB per GPU",
                               "check the GPU partition mode (amd-smi static --partition); "
                               "use SPX/NPS1 or lower preflight_gpu_min_vram_gib"))
    if t["gpu_min_rocm_version"]:
        rocm = facts.get("versions", {}).get("rocm")
        have, need = version_tuple(rocm), version_tuple(t["gpu_min_rocm_version"])
        if need and (have is None or have < need):
            out.append(finding(host, "gpu.rocm_version", rocm or "unknown",
                               f">= {t['gpu_min_rocm_version']}",
                               "install a newer ROCm (amdgpu-install --usecase=rocm) or use an "
                               "image that ships it"))
    if t["gpu_require_device_nodes"]:
        devices = facts.get("devices", {})
        missing = []  # None: not known (facts from saved outputs, not from the host)
        if devices.get("kfd") is not None and not devices["kfd"]:
            missing.append("/dev/kfd")
        if devices.get("dri_render") is not None and not devices["dri_render"]:
            missing.append("/dev/dri/renderD*")
        if missing:
            out.append(finding(host, "gpu.device_nodes", "missing " + ", ".join(missing),
                               "/dev/kfd and /dev/dri/renderD* visible",
                               "run the container with --device /dev/kfd --device /dev/dri "
                               "--group-add video"))
    xgmi = facts.get("xgmi", {})
    if t["gpu_require_xgmi_full_mesh"] and xgmi.get("available") and xgmi.get("full_mesh") is False:
        links = xgmi.get("links", {})
        need = len(links) - 1
        short = sorted(f"{k} ({len(v)} peers)" for k, v in links.items() if len(v) < need)
        out.append(finding(host, "gpu.xgmi", ", ".join(short) or "partial xGMI mesh",
                           f"every GPU linked to {need} peers over xGMI",
                           "check `amd-smi xgmi`/`amd-smi topology` and the xGMI firmware; "
                           "a PCIe-only link means a GPU fell off the hive"))
    return out


def evaluate_rdma(host: str, result: object, t: dict) -> list[dict]:
    failed = _module_failed(result)
    if failed:
        return [finding(host, "rdma.facts", failed, "RDMA facts from sysfs or ibv_devinfo",
                        "see the message; run the named command by hand on the host")]
    facts = _facts(result, "rdma")
    devices = facts.get("devices", [])
    wanted = list(t["rdma_devices"] or [])
    out = []
    cut = [f"{d.get('name')}: {d['incomplete']}" for d in devices if d.get("incomplete")]
    if cut:
        out.append(finding(host, "rdma.facts", f"{facts.get('source')} output incomplete: "
                           + "; ".join(cut), "every RDMA device with all its ports",
                           "run `ibv_devinfo -v` again on the host (or save its whole output) "
                           "and check the device with `rdma link show`"))
    if wanted:
        names = {d.get("name") for d in devices}
        missing = [n for n in wanted if n not in names]
        if missing:
            out.append(finding(host, "rdma.devices", "missing " + ", ".join(missing),
                               "RDMA devices " + ", ".join(wanted),
                               "check `ibv_devices`/`rdma link`, the mlx5 driver, and that "
                               "/sys/class/infiniband is visible in the container"))
    elif t["rdma_min_devices"] and len(devices) < int(t["rdma_min_devices"]):
        out.append(finding(host, "rdma.count", f"{len(devices)} RDMA devices",
                           f">= {t['rdma_min_devices']} RDMA devices",
                           "check `ibv_devices` and `dmesg | grep mlx5`; load the RDMA driver "
                           "(modprobe mlx5_ib) or lower preflight_rdma_min_devices"))
    ports = _ports(devices, wanted)
    down = [(n, p) for n, p in ports if p.get("state") != "ACTIVE"]
    if down:
        out.append(finding(host, "rdma.port_state",
                           ", ".join(f"{n} {p.get('state')} ({p.get('phys_state')})"
                                     for n, p in down),
                           "ACTIVE on every port",
                           "check the cable and switch port (`ip link show "
                           + "/".join(sorted({str(p.get('netdev')) for _name, p in down}))
                           + "`, `ethtool`), then `ip link set <dev> up`"))
    active = [(n, p) for n, p in ports if p.get("state") == "ACTIVE"]
    if t["rdma_link_layer"]:
        bad = [(n, p) for n, p in active if p.get("link_layer")
               and p["link_layer"].lower() != t["rdma_link_layer"].lower()]
        if bad:
            out.append(finding(host, "rdma.link_layer",
                               ", ".join(f"{n} {p['link_layer']}" for n, p in bad),
                               t["rdma_link_layer"],
                               "set the port type with mlxconfig (LINK_TYPE_P1=ETH for RoCE) or "
                               "change preflight_rdma_link_layer"))
    if t["rdma_min_active_mtu"]:
        small = [(n, p) for n, p in active if p.get("active_mtu") is not None
                 and p["active_mtu"] < int(t["rdma_min_active_mtu"])]
        if small:
            found = ", ".join(
                f"{n} {p['active_mtu']}" + (f" (netdev {p['netdev']} mtu {p['netdev_mtu']})"
                                            if p.get("netdev_mtu") else "")
                for n, p in small)
            out.append(finding(host, "rdma.active_mtu", found,
                               f">= {t['rdma_min_active_mtu']}",
                               "raise the netdev MTU (`ip link set <netdev> mtu 9000`, and in "
                               "netplan/NetworkManager) to match the switch"))
    eth = [(n, p) for n, p in active if (p.get("link_layer") or "").lower() == "ethernet"]
    unknown = [n for n, p in eth if p.get("gids_known") is False]
    if unknown:
        out.append(finding(host, "rdma.roce_v2_gid",
                           f"GID table unknown on {', '.join(unknown)} (facts from "
                           f"{facts.get('source')}, which has no GIDs)",
                           "a RoCE v2 GID of the form ::ffff:a.b.c.d on every port",
                           "save `show_gids` or `ibv_devinfo -v` with the other outputs (or read "
                           "the host's /sys/class/infiniband)"))
    no_gid = [(n, p) for n, p in eth if p.get("roce_v2_ipv4_gid_index") is None
              and p.get("gids_known") is not False]
    if no_gid:
        parts = []
        for n, p in no_gid:
            kinds = sorted({"IPv4" if g.get("ipv4") else "IPv6" for g in p.get("gids", [])})
            types = sorted({str(g.get("type")) for g in p.get("gids", [])})
            parts.append(f"{n} only {'/'.join(kinds) or 'no'} GIDs ({', '.join(types)})")
        out.append(finding(host, "rdma.roce_v2_gid", "; ".join(parts),
                           "a RoCE v2 GID of the form ::ffff:a.b.c.d on every port",
                           "assign an IPv4 address to the port's netdev (the kernel then adds "
                           "the ::ffff: GIDs)"))
    indices = sorted({p["roce_v2_ipv4_gid_index"] for _name, p in eth
                      if p.get("roce_v2_ipv4_gid_index") is not None})
    expected_index = t["rdma_gid_index"]
    if len(indices) > 1:
        out.append(finding(host, "rdma.gid_index",
                           "RoCE v2 IPv4 GID at indices " + ", ".join(map(str, indices)),
                           "one index on every port (MC_GID_INDEX is a single value)",
                           "give every RoCE netdev the same address layout (one IPv4, no "
                           "extra IPv6 globals) so the kernel GID tables line up"))
    elif indices and expected_index is not None and indices[0] != int(expected_index):
        out.append(finding(host, "rdma.gid_index", f"RoCE v2 IPv4 GID at index {indices[0]}",
                           f"index {expected_index} (MC_GID_INDEX)",
                           f"set MC_GID_INDEX={indices[0]} for this host's workers"))
    if t["rdma_min_rate_gbps"]:
        slow = [(n, p) for n, p in active if p.get("rate_gbps") is not None
                and p["rate_gbps"] < float(t["rdma_min_rate_gbps"])]
        if slow:
            out.append(finding(host, "rdma.rate", ", ".join(f"{n} {p.get('rate')}"
                                                            for n, p in slow),
                               f">= {t['rdma_min_rate_gbps']} Gb/s",
                               "check the link speed negotiation (`ethtool <netdev>`) and "
                               "the cable/transceiver"))
    uverbs = facts.get("uverbs", [])
    if t["rdma_require_uverbs"] and devices and uverbs is not None:  # None: saved outputs
        if len(uverbs) < len(devices):
            out.append(finding(host, "rdma.uverbs",
                               f"{len(uverbs)} /dev/infiniband/uverbs* nodes",
                               f"{len(devices)} (one per RDMA device)",
                               "run the container with --device /dev/infiniband (and "
                               "--cap-add IPC_LOCK)"))
    return out


def _listed_names(result: object) -> tuple[set[str] | None, str | None]:
    """``(file names, None)`` of a registered ``ansible.builtin.find`` of the model directory,
    ``(None, error)`` when it failed, ``(None, None)`` when it did not run (skipped, absent)."""
    if not isinstance(result, dict) or not result or result.get("skipped"):
        return None, None
    if result.get("failed") or "files" not in result:
        return None, str(result.get("msg") or "listing failed without a message")
    names = {str(item.get("path", "")).rstrip("/").rsplit("/", 1)[-1]
             for item in result.get("files") or [] if isinstance(item, dict)}
    return names, None


def _model_findings(host: str, model: dict, model_files: object, t: dict) -> list[dict]:
    """``host.model_path`` (directory, config.json, tokenizer, weights as ``model_require``
    says) and ``host.disk_free`` for the model directory ``t["model_path"]``."""
    require = list(t["model_require"] or [])
    unknown = sorted(set(require) - set(MODEL_REQUIRE))
    if unknown:
        raise ValueError(f"unknown model_require items: {', '.join(unknown)} "
                         f"(known: {', '.join(MODEL_REQUIRE)})")
    path = t["model_path"]
    out = []
    problems = []
    if not model.get("exists"):
        problems.append(f"{path} missing")
    else:
        if "config" in require and not model.get("config_json"):
            problems.append("no config.json")
        if "tokenizer" in require:
            names, error = _listed_names(model_files)
            if error:
                problems.append(f"tokenizer files not listed ({error})")
            elif names is not None and not names & set(TOKENIZER_FILES):
                seen = sorted(n for n in names if n.startswith("tokenizer"))
                problems.append("no tokenizer" + (f" ({', '.join(seen)} only)" if seen else ""))
        if "weights" in require and not model.get("safetensors"):
            problems.append("no *.safetensors weights")
    if problems:
        wanted = [text for item, text in MODEL_REQUIRE.items() if item in require]
        out.append(finding(host, "host.model_path", ", ".join(problems),
                           f"{path}" + (f" with {', '.join(wanted)}" if wanted else ""),
                           f"put the model at {path} on every prefill and decode host (hf "
                           f"download <hf_repo> --local-dir {path}), or point "
                           "disagg_model_root / sglang_worker_model_path (or "
                           "preflight_model_path) at where it is"))
    need = t["model_min_free_gib"]
    free = model.get("free_bytes")
    if need and free is not None and free < need * GIB:
        out.append(finding(host, "host.disk_free", f"{human_bytes(free)} free at {path}",
                           f">= {need} GiB", "free space or put the model on a larger volume"))
    return out


def evaluate_tunables(host: str, result: object, t: dict,
                      model_files: object = None) -> list[dict]:
    """The host.* findings; ``model_files`` is the role's listing of the model directory."""
    failed = _module_failed(result)
    if failed:
        return [finding(host, "host.facts", failed, "host tunables from /proc and /sys",
                        "see the message; read the named file by hand on the host")]
    f = _facts(result, "host_tunables")
    out = []
    numa = f.get("numa_balancing")
    if t["numa_balancing"] is not None and numa is not None and numa != int(t["numa_balancing"]):
        out.append(finding(host, "host.numa_balancing", f"kernel.numa_balancing={numa}",
                           f"kernel.numa_balancing={t['numa_balancing']}",
                           "sysctl -w kernel.numa_balancing=0 and persist it in "
                           "/etc/sysctl.d/"))
    iommu = f.get("iommu", {})
    if t["iommu_modes"] and iommu.get("mode") and iommu["mode"] not in t["iommu_modes"]:
        tokens = " ".join(iommu.get("tokens") or []) or "no iommu= on the kernel command line"
        out.append(finding(host, "host.iommu", f"{iommu['mode']} ({tokens})",
                           " or ".join(t["iommu_modes"]),
                           "add iommu=pt to GRUB_CMDLINE_LINUX, update-grub, reboot"))
    memlock = f.get("memlock", {})
    if t["memlock_unlimited"] and memlock.get("soft_bytes") not in (None, -1):
        out.append(finding(host, "host.memlock",
                           f"{human_bytes(memlock['soft_bytes'])} ({memlock.get('source')})",
                           "unlimited",
                           "run containers with --ulimit memlock=-1:-1 (or default-ulimits in "
                           "/etc/docker/daemon.json); on the host set memlock unlimited in "
                           "/etc/security/limits.d"))
    nofile = f.get("nofile", {}).get("soft_bytes", f.get("nofile", {}).get("soft"))
    if t["min_nofile"] and nofile is not None and nofile != -1 and nofile < int(t["min_nofile"]):
        out.append(finding(host, "host.nofile", f"{nofile} open files", f">= {t['min_nofile']}",
                           "raise nofile (--ulimit nofile=1048576:1048576 for containers, "
                           "limits.d on the host)"))
    mmc = f.get("max_map_count")
    if t["min_max_map_count"] and mmc is not None and mmc < int(t["min_max_map_count"]):
        out.append(finding(host, "host.max_map_count", f"vm.max_map_count={mmc}",
                           f">= {t['min_max_map_count']}",
                           f"sysctl -w vm.max_map_count={t['min_max_map_count']}"))
    gov = f.get("cpu_governor", {}).get("values", {})
    if t["cpu_governor"] and gov:
        other = {k: v for k, v in gov.items() if k != t["cpu_governor"]}
        if other:
            out.append(finding(host, "host.cpu_governor",
                               ", ".join(f"{k} on {v} CPUs" for k, v in other.items()),
                               f"{t['cpu_governor']} on every CPU",
                               f"cpupower frequency-set -g {t['cpu_governor']} (and persist it)"))
    huge = f.get("hugepages", {})
    if t["min_hugepages"] and huge.get("hugepages_total", 0) < int(t["min_hugepages"]):
        out.append(finding(host, "host.hugepages", f"{huge.get('hugepages_total', 0)} hugepages",
                           f">= {t['min_hugepages']}",
                           f"sysctl -w vm.nr_hugepages={t['min_hugepages']}"))
    clock = f.get("clock", {})
    if t["require_clock_sync"] and clock.get("synchronized") is not True:
        state = "not synchronized" if clock.get("synchronized") is False else "unknown"
        out.append(finding(host, "host.clock_sync", state, "synchronized",
                           "enable chrony or systemd-timesyncd (timedatectl set-ntp true)"))
    if t["model_path"]:
        out += _model_findings(host, f.get("model", {}), model_files, t)
    busy = f.get("ports", {}).get("busy", [])
    if busy:
        out.append(finding(host, "host.ports", "in use: " + ", ".join(map(str, busy)),
                           "free: " + ", ".join(map(str, t["ports_free"])),
                           "stop what listens there (`ss -ltnp 'sport = :<port>'`) or move the "
                           "service to another port"))
    return out


def evaluate_docker(host: str, result: object, t: dict) -> list[dict]:
    failed = _module_failed(result)
    if failed:
        return []  # host.facts already reports a failed host_tunables run
    docker = _facts(result, "host_tunables").get("docker", {})
    if not docker.get("checked"):
        return []
    if not docker.get("reachable"):
        return [finding(host, "docker.reachable", f"{docker.get('socket')}: "
                        f"{docker.get('error') or 'unreachable'}",
                        "the Docker daemon answering GET /info",
                        "start dockerd (systemctl start docker) and let this user use the "
                        "socket (group docker)")]
    out = []
    memlock = docker.get("memlock_default", {})
    if t["docker_require_memlock_default_unlimited"] and memlock.get("bytes") != -1:
        out.append(finding(host, "docker.memlock_default",
                           f"{human_bytes(memlock.get('bytes'))} ({memlock.get('source')})",
                           "unlimited",
                           'set "default-ulimits": {"memlock": {"Name": "memlock", "Soft": -1, '
                           '"Hard": -1}} in /etc/docker/daemon.json and restart dockerd'))
    return out


def evaluate(host: str, results: dict, thresholds: dict | None = None) -> list[dict]:
    """All findings for one host. ``results`` maps amdgpu/rdma/host_tunables (and model_files,
    the role's ``ansible.builtin.find`` of the model directory) to module results."""
    t = dict(DEFAULTS)
    t.update({k: v for k, v in (thresholds or {}).items() if k in DEFAULTS})
    unknown = sorted(set(thresholds or {}) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown preflight thresholds: {', '.join(unknown)}")
    findings = []
    if t["check_gpu"]:
        findings += evaluate_gpu(host, results.get("amdgpu"), t)
    if t["check_rdma"]:
        findings += evaluate_rdma(host, results.get("rdma"), t)
    if t["check_tunables"]:
        findings += evaluate_tunables(host, results.get("host_tunables"), t,
                                      results.get("model_files"))
    if t["check_docker"]:
        findings += evaluate_docker(host, results.get("host_tunables"), t)
    if t["check_kv_path"]:
        findings += evaluate_kv_path(results.get("kv_path"), t)
    return findings


def markdown(findings_by_host: dict, title: str = "Preflight",
             kv_path: list[dict] | None = None) -> str:
    """A Markdown table of every finding, with a line for each host that passed; then, when
    ``kv_path`` lists probed prefill->decode pairs, one row per pair with its measurements."""
    hosts = sorted(findings_by_host)
    failing = [h for h in hosts if findings_by_host[h]]
    lines = [f"# {title}", "",
             f"{len(hosts)} hosts, {len(hosts) - len(failing)} fit, {len(failing)} with findings, "
             f"{sum(len(v) for v in findings_by_host.values())} findings.", "",
             "| host | check | found | expected | fix |", "| --- | --- | --- | --- | --- |"]
    for host in hosts:
        items = findings_by_host[host]
        if not items:
            lines.append(f"| {cell(host)} | all | fit | - | - |")
        for f in items:
            lines.append("| " + " | ".join(cell(f[k]) for k in
                                           ("host", "check", "found", "expected", "fix")) + " |")
    if kv_path:
        lines += kv_markdown(kv_path)
    return "\n".join(lines) + "\n"
