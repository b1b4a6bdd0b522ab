# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE preflight evaluation: facts + thresholds -> findings (not a public API).

A finding is ``{"host", "check", "found", "expected", "fix"}`` and renders as one line::

    HOST: CHECK: found X, expected Y; fix: Z

Each check is evaluated once per host and aggregates every offending device into one finding, so
one planted fault gives one line. Checks that cannot be decided (a fact the host does not expose)
give no finding; the per-host JSON report still shows the facts they would have used.
"""

from __future__ import annotations

import json
import re

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
    "model_min_free_gib": 0,
    "ports_free": [],
    "docker_require_memlock_default_unlimited": False,
    "check_kv_path": True,
    "kv_min_gbps": 1,
    "kv_ib_min_gbps": 0,
}
GIB = 1024**3


def _finding(host: str, check: str, found: str, expected: str, fix: str) -> dict:
    return {"host": host, "check": check, "found": found, "expected": expected, "fix": fix}


def render(finding: dict) -> str:
    """``HOST: CHECK: found X, expected Y; fix: Z``."""
    return (f"{finding['host']}: {finding['check']}: found {finding['found']}, "
            f"expected {finding['expected']}; fix: {finding['fix']}")


def version_tuple(text: object) -> tuple[int, ...] | None:
    """``"6.2.2-116"`` -> ``(6, 2, 2)``; None when there is no leading number."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", str(text or ""))
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _human_bytes(value: int | None) -> str:
    if value is None:
        return "unknown"
    if value < 0:
        return "unlimited"
    for unit, size in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


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
        return [_finding(host, "gpu.facts", failed, "GPU facts from amd-smi, rocm-smi or sysfs",
                         "see the message; run the named command by hand on the host")]
    facts = _facts(result, "amdgpu")
    gpus = facts.get("gpus", [])
    out = []
    tools = facts.get("tools", {})
    if t["gpu_require_amd_smi"] and not tools.get("amd_smi"):
        fell = facts.get("source") or "none"
        out.append(_finding(host, "gpu.amd_smi", f"amd-smi absent (facts from {fell})",
                            "amd-smi on PATH or in /opt/rocm/bin",
                            "install amd-smi-lib from the ROCm repository "
                            "(apt-get install amd-smi-lib) or set preflight_gpu_require_amd_smi: "
                            "false"))
    if t["gpu_count"] is not None and len(gpus) != int(t["gpu_count"]):
        present = ", ".join(g.get("bdf") or f"gpu{g.get('index')}" for g in gpus) or "none"
        out.append(_finding(host, "gpu.count", f"{len(gpus)} GPUs ({present})",
                            f"{t['gpu_count']} GPUs",
                            "look for the missing GPU in `dmesg | grep -i amdgpu` and `lspci -d "
                            "1002:`; reseat or replace it, or map all /dev/dri nodes into the "
                            "container"))
    if t["gpu_product"]:
        bad = sorted({str(g.get("product")) for g in gpus if g.get("product") is not None
                      and t["gpu_product"].lower() not in str(g["product"]).lower()})
        if bad:
            out.append(_finding(host, "gpu.product", ", ".join(bad),
                                f"product matching {t['gpu_product']!r}",
                                "schedule this role on hosts with the expected GPUs, or change "
                                "preflight_gpu_product"))
    if t["gpu_gfx_target"]:
        bad = sorted({str(g["gfx_target"]) for g in gpus if g.get("gfx_target")
                      and g["gfx_target"] != t["gpu_gfx_target"]})
        if bad:
            out.append(_finding(host, "gpu.gfx_target", ", ".join(bad), t["gpu_gfx_target"],
                                "use an image built for this gfx target, or change "
                                "preflight_gpu_gfx_target"))
    if t["gpu_min_vram_gib"]:
        small = [g for g in gpus if g.get("vram_total_bytes") is not None
                 and g["vram_total_bytes"] < t["gpu_min_vram_gib"] * GIB]
        if small:
            found = ", ".join(f"{g.get('bdf')} {_human_bytes(g['vram_total_bytes'])}"
                              for g in small)
            out.append(_finding(host, "gpu.vram", found, f">= {t['gpu_min_vram_gib']} GiB per GPU",
                                "check the GPU partition mode (amd-smi static --partition); "
                                "use SPX/NPS1 or lower preflight_gpu_min_vram_gib"))
    if t["gpu_min_rocm_version"]:
        rocm = facts.get("versions", {}).get("rocm")
        have, need = version_tuple(rocm), version_tuple(t["gpu_min_rocm_version"])
        if need and (have is None or have < need):
            out.append(_finding(host, "gpu.rocm_version", rocm or "unknown",
                                f">= {t['gpu_min_rocm_version']}",
                                "install a newer ROCm (amdgpu-install --usecase=rocm) or use an "
                                "image that ships it"))
    if t["gpu_require_device_nodes"]:
        devices = facts.get("devices", {})
        missing = []
        if not devices.get("kfd"):
            missing.append("/dev/kfd")
        if not devices.get("dri_render"):
            missing.append("/dev/dri/renderD*")
        if missing:
            out.append(_finding(host, "gpu.device_nodes", "missing " + ", ".join(missing),
                                "/dev/kfd and /dev/dri/renderD* visible",
                                "run the container with --device /dev/kfd --device /dev/dri "
                                "--group-add video"))
    xgmi = facts.get("xgmi", {})
    if t["gpu_require_xgmi_full_mesh"] and xgmi.get("available") and xgmi.get("full_mesh") is False:
        links = xgmi.get("links", {})
        need = len(links) - 1
        short = sorted(f"{k} ({len(v)} peers)" for k, v in links.items() if len(v) < need)
        out.append(_finding(host, "gpu.xgmi", ", ".join(short) or "partial xGMI mesh",
                            f"every GPU linked to {need} peers over xGMI",
                            "check `amd-smi xgmi`/`amd-smi topology` and the xGMI firmware; "
                            "a PCIe-only link means a GPU fell off the hive"))
    return out


def evaluate_rdma(host: str, result: object, t: dict) -> list[dict]:
    failed = _module_failed(result)
    if failed:
        return [_finding(host, "rdma.facts", failed, "RDMA facts from sysfs or ibv_devinfo",
                         "see the message; run the named command by hand on the host")]
    facts = _facts(result, "rdma")
    devices = facts.get("devices", [])
    wanted = list(t["rdma_devices"] or [])
    out = []
    if wanted:
        names = {d.get("name") for d in devices}
        missing = [n for n in wanted if n not in names]
        if missing:
            out.append(_finding(host, "rdma.devices", "missing " + ", ".join(missing),
                                "RDMA devices " + ", ".join(wanted),
                                "check `ibv_devices`/`rdma link`, the mlx5 driver, and that "
                                "/sys/class/infiniband is visible in the container"))
    elif t["rdma_min_devices"] and len(devices) < int(t["rdma_min_devices"]):
        out.append(_finding(host, "rdma.count", f"{len(devices)} RDMA devices",
                            f">= {t['rdma_min_devices']} RDMA devices",
                            "check `ibv_devices` and `dmesg | grep mlx5`; load the RDMA driver "
                            "(modprobe mlx5_ib) or lower preflight_rdma_min_devices"))
    ports = _ports(devices, wanted)
    down = [(n, p) for n, p in ports if p.get("state") != "ACTIVE"]
    if down:
        out.append(_finding(host, "rdma.port_state",
                            ", ".join(f"{n} {p.get('state')} ({p.get('phys_state')})"
                                      for n, p in down),
                            "ACTIVE on every port",
                            "check the cable and switch port (`ip link show "
                            + "/".join(sorted({str(p.get('netdev')) for _, p in down}))
                            + "`, `ethtool`), then `ip link set <dev> up`"))
    active = [(n, p) for n, p in ports if p.get("state") == "ACTIVE"]
    if t["rdma_link_layer"]:
        bad = [(n, p) for n, p in active if p.get("link_layer")
               and p["link_layer"].lower() != t["rdma_link_layer"].lower()]
        if bad:
            out.append(_finding(host, "rdma.link_layer",
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
            out.append(_finding(host, "rdma.active_mtu", found,
                                f">= {t['rdma_min_active_mtu']}",
                                "raise the netdev MTU (`ip link set <netdev> mtu 9000`, and in "
                                "netplan/NetworkManager) to match the switch"))
    eth = [(n, p) for n, p in active if (p.get("link_layer") or "").lower() == "ethernet"]
    no_gid = [(n, p) for n, p in eth if p.get("roce_v2_ipv4_gid_index") is None]
    if no_gid:
        parts = []
        for n, p in no_gid:
            kinds = sorted({"IPv4" if g.get("ipv4") else "IPv6" for g in p.get("gids", [])})
            types = sorted({str(g.get("type")) for g in p.get("gids", [])})
            parts.append(f"{n} only {'/'.join(kinds) or 'no'} GIDs ({', '.join(types)})")
        out.append(_finding(host, "rdma.roce_v2_gid", "; ".join(parts),
                            "a RoCE v2 GID of the form ::ffff:a.b.c.d on every port",
                            "assign an IPv4 address to the port's netdev (the kernel then adds "
                            "the ::ffff: GIDs)"))
    indices = sorted({p["roce_v2_ipv4_gid_index"] for _, p in eth
                      if p.get("roce_v2_ipv4_gid_index") is not None})
    expected_index = t["rdma_gid_index"]
    if len(indices) > 1:
        out.append(_finding(host, "rdma.gid_index",
                            "RoCE v2 IPv4 GID at indices " + ", ".join(map(str, indices)),
                            "one index on every port (MC_GID_INDEX is a single value)",
                            "give every RoCE netdev the same address layout (one IPv4, no "
                            "extra IPv6 globals) so the kernel GID tables line up"))
    elif indices and expected_index is not None and indices[0] != int(expected_index):
        out.append(_finding(host, "rdma.gid_index", f"RoCE v2 IPv4 GID at index {indices[0]}",
                            f"index {expected_index} (MC_GID_INDEX)",
                            f"set MC_GID_INDEX={indices[0]} for this host's workers"))
    if t["rdma_min_rate_gbps"]:
        slow = [(n, p) for n, p in active if p.get("rate_gbps") is not None
                and p["rate_gbps"] < float(t["rdma_min_rate_gbps"])]
        if slow:
            out.append(_finding(host, "rdma.rate", ", ".join(f"{n} {p.get('rate')}"
                                                             for n, p in slow),
                                f">= {t['rdma_min_rate_gbps']} Gb/s",
                                "check the link speed negotiation (`ethtool <netdev>`) and "
                                "the cable/transceiver"))
    if t["rdma_require_uverbs"] and devices:
        uverbs = facts.get("uverbs", [])
        if len(uverbs) < len(devices):
            out.append(_finding(host, "rdma.uverbs",
                                f"{len(uverbs)} /dev/infiniband/uverbs* nodes",
                                f"{len(devices)} (one per RDMA device)",
                                "run the container with --device /dev/infiniband (and "
                                "--cap-add IPC_LOCK)"))
    return out


def evaluate_tunables(host: str, result: object, t: dict) -> list[dict]:
    failed = _module_failed(result)
    if failed:
        return [_finding(host, "host.facts", failed, "host tunables from /proc and /sys",
                         "see the message; read the named file by hand on the host")]
    f = _facts(result, "host_tunables")
    out = []
    numa = f.get("numa_balancing")
    if t["numa_balancing"] is not None and numa is not None and numa != int(t["numa_balancing"]):
        out.append(_finding(host, "host.numa_balancing", f"kernel.numa_balancing={numa}",
                            f"kernel.numa_balancing={t['numa_balancing']}",
                            "sysctl -w kernel.numa_balancing=0 and persist it in "
                            "/etc/sysctl.d/"))
    iommu = f.get("iommu", {})
    if t["iommu_modes"] and iommu.get("mode") and iommu["mode"] not in t["iommu_modes"]:
        tokens = " ".join(iommu.get("tokens") or []) or "no iommu= on the kernel command line"
        out.append(_finding(host, "host.iommu", f"{iommu['mode']} ({tokens})",
                            " or ".join(t["iommu_modes"]),
                            "add iommu=pt to GRUB_CMDLINE_LINUX, update-grub, reboot"))
    memlock = f.get("memlock", {})
    if t["memlock_unlimited"] and memlock.get("soft_bytes") not in (None, -1):
        out.append(_finding(host, "host.memlock",
                            f"{_human_bytes(memlock['soft_bytes'])} ({memlock.get('source')})",
                            "unlimited",
                            "run containers with --ulimit memlock=-1:-1 (or default-ulimits in "
                            "/etc/docker/daemon.json); on the host set memlock unlimited in "
                            "/etc/security/limits.d"))
    nofile = f.get("nofile", {}).get("soft_bytes", f.get("nofile", {}).get("soft"))
    if t["min_nofile"] and nofile is not None and nofile != -1 and nofile < int(t["min_nofile"]):
        out.append(_finding(host, "host.nofile", f"{nofile} open files", f">= {t['min_nofile']}",
                            "raise nofile (--ulimit nofile=1048576:1048576 for containers, "
                            "limits.d on the host)"))
    mmc = f.get("max_map_count")
    if t["min_max_map_count"] and mmc is not None and mmc < int(t["min_max_map_count"]):
        out.append(_finding(host, "host.max_map_count", f"vm.max_map_count={mmc}",
                            f">= {t['min_max_map_count']}",
                            f"sysctl -w vm.max_map_count={t['min_max_map_count']}"))
    gov = f.get("cpu_governor", {}).get("values", {})
    if t["cpu_governor"] and gov:
        other = {k: v for k, v in gov.items() if k != t["cpu_governor"]}
        if other:
            out.append(_finding(host, "host.cpu_governor",
                                ", ".join(f"{k} on {v} CPUs" for k, v in other.items()),
                                f"{t['cpu_governor']} on every CPU",
                                f"cpupower frequency-set -g {t['cpu_governor']} (and persist it)"))
    huge = f.get("hugepages", {})
    if t["min_hugepages"] and huge.get("hugepages_total", 0) < int(t["min_hugepages"]):
        out.append(_finding(host, "host.hugepages", f"{huge.get('hugepages_total', 0)} hugepages",
                            f">= {t['min_hugepages']}",
                            f"sysctl -w vm.nr_hugepages={t['min_hugepages']}"))
    clock = f.get("clock", {})
    if t["require_clock_sync"] and clock.get("synchronized") is not True:
        state = "not synchronized" if clock.get("synchronized") is False else "unknown"
        out.append(_finding(host, "host.clock_sync", state, "synchronized",
                            "enable chrony or systemd-timesyncd (timedatectl set-ntp true)"))
    model = f.get("model", {})
    if t["model_path"]:
        problems = []
        if not model.get("exists"):
            problems.append(f"{t['model_path']} missing")
        else:
            if not model.get("config_json"):
                problems.append("no config.json")
            if not model.get("safetensors"):
                problems.append("no *.safetensors weights")
        if problems:
            out.append(_finding(host, "host.model_path", ", ".join(problems),
                                f"{t['model_path']} with config.json and *.safetensors",
                                "download the model to that path on every host (hf download "
                                "<repo> --local-dir <path>) or fix preflight_model_path"))
        need = t["model_min_free_gib"]
        free = model.get("free_bytes")
        if need and free is not None and free < need * GIB:
            out.append(_finding(host, "host.disk_free", f"{_human_bytes(free)} free at "
                                f"{t['model_path']}", f">= {need} GiB",
                                "free space or put the model on a larger volume"))
    busy = f.get("ports", {}).get("busy", [])
    if busy:
        out.append(_finding(host, "host.ports", "in use: " + ", ".join(map(str, busy)),
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
        return [_finding(host, "docker.reachable", f"{docker.get('socket')}: "
                         f"{docker.get('error') or 'unreachable'}",
                         "the Docker daemon answering GET /info",
                         "start dockerd (systemctl start docker) and let this user use the "
                         "socket (group docker)")]
    out = []
    memlock = docker.get("memlock_default", {})
    if t["docker_require_memlock_default_unlimited"] and memlock.get("bytes") != -1:
        out.append(_finding(host, "docker.memlock_default",
                            f"{_human_bytes(memlock.get('bytes'))} ({memlock.get('source')})",
                            "unlimited",
                            'set "default-ulimits": {"memlock": {"Name": "memlock", "Soft": -1, '
                            '"Hard": -1}} in /etc/docker/daemon.json and restart dockerd'))
    return out


def evaluate(host: str, results: dict, thresholds: dict | None = None) -> list[dict]:
    """All findings for one host. ``results`` maps amdgpu/rdma/host_tunables to module results."""
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
        findings += evaluate_tunables(host, results.get("host_tunables"), t)
    if t["check_docker"]:
        findings += evaluate_docker(host, results.get("host_tunables"), t)
    if t["check_kv_path"]:
        findings += evaluate_kv_path(results.get("kv_path"), t)
    return findings


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


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
            lines.append(f"| {_cell(host)} | all | fit | - | - |")
        for f in items:
            lines.append("| " + " | ".join(_cell(f[k]) for k in
                                           ("host", "check", "found", "expected", "fix")) + " |")
    if kv_path:
        lines += kv_markdown(kv_path)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- KV path (kv.path)
# The role runs the KV probe (src/pd_rehearsal/kvprobe.py) from every sender (prefill) host to
# every receiver (decode) host, and ib_write_bw where perftest is installed on both; these
# helpers turn what the containers and commands printed into one dict per pair, the pair's
# findings and its Markdown row.

KV_PROBE_FIELDS = ("bytes", "seconds", "gbps", "verified", "session", "block_bytes", "repeat",
                   "phase", "hcas")


def _gbit(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"
    return f"{number:g}" if number >= 100 else f"{number:.3g}"


def parse_kv_probe(text: object) -> dict | None:
    """The JSON result line of ``kvprobe send`` in a container's output (stdout and stderr
    mixed: Mooncake logs on stderr), or None when there is none."""
    for line in reversed(str(text or "").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "ok" in data:
                return data
    return None


def parse_ib_write_bw(text: object) -> float | None:
    """BW average in Gbit/s from ib_write_bw's table (``--report_gbits`` or MB/sec), the row of
    the largest message size; None when the output has no table."""
    unit = None
    value = None
    for line in str(text or "").splitlines():
        if "BW average[" in line:
            unit = "gb" if "Gb/sec" in line else "mb"
            continue
        fields = line.split()
        if unit and len(fields) >= 4 and fields[0].isdigit() and fields[1].isdigit():
            try:
                value = float(fields[3])
            except ValueError:
                continue
    if unit is None or value is None:
        return None
    return value if unit == "gb" else value * 1048576 * 8 / 1e9  # perftest's MB is MiB


def ib_write_bw_result(client: object, server: object = None, note: str = "") -> dict:
    """One pair's ib_write_bw outcome from the client's (and server's) command results:
    ``{"status": "ran"|"failed"|"skipped", "gbps", "note"}``."""
    if not isinstance(client, dict) or client.get("skipped") or not client:
        return {"status": "skipped", "gbps": None, "note": note or "not run"}
    gbps = parse_ib_write_bw(client.get("stdout"))
    if client.get("rc") == 0 and gbps is not None:
        return {"status": "ran", "gbps": round(gbps, 2), "note": note}
    why = [str(client.get("stderr") or client.get("msg") or "").strip()]
    if isinstance(server, dict) and server.get("stderr"):
        why.append(f"server: {str(server['stderr']).strip()}")
    tail = " ".join(" / ".join(w.splitlines()[-2:]) for w in why if w)
    return {"status": "failed", "gbps": gbps,
            "note": f"ib_write_bw exited {client.get('rc')}" + (f": {tail}" if tail else "")}


def _container_output(result: dict) -> str:
    container = result.get("container") if isinstance(result.get("container"), dict) else {}
    return str(container.get("Output") or result.get("msg") or "")


def _ib_skipped(sender: str, receiver: str, settings: dict) -> dict:
    note = settings.get("ib_note")
    if not note:
        have = set(settings.get("perftest_hosts") or [])
        missing = [h for h in (sender, receiver) if h not in have]
        note = (f"perftest (ib_write_bw) not installed on {' and '.join(missing)}" if missing
                else "not run")
    return {"status": "skipped", "gbps": None, "note": note}


def kv_pairs(send_results: object, sender: str, receivers: dict, ib: dict | None,
             settings: dict) -> list[dict]:
    """One dict per pair ``sender->receiver`` from the registered loop of sender containers
    (``item`` = receiver name), the receivers' start-up outcome (``{name: {"ok", "error",
    "control", "log_tail"}}``), the ib_write_bw outcomes by pair name and the probe settings
    (protocol, device, min_gbps, ib_min_gbps; for pairs without an ib_write_bw outcome:
    ``ib_note``, why it did not run at all, or ``perftest_hosts``, the hosts that have it)."""
    by_receiver = {}
    for res in send_results or []:
        if isinstance(res, dict) and res.get("item") is not None:
            by_receiver[str(res["item"])] = res
    out = []
    for receiver in sorted(set(by_receiver) | {r for r in receivers if r != sender}):
        info = receivers.get(receiver) or {}
        pair = f"{sender}->{receiver}"
        row: dict = {"pair": pair, "sender": sender, "receiver": receiver, "ok": False,
                     "error": None, "protocol": settings.get("protocol"),
                     "device": settings.get("device") or "", "control": info.get("control"),
                     "min_gbps": settings.get("min_gbps"),
                     "ib_min_gbps": settings.get("ib_min_gbps") or 0,
                     "bytes": 0, "seconds": None, "gbps": None, "verified": False,
                     "session": None}
        res = by_receiver.get(receiver)
        if not info.get("ok"):
            tail = [ln for ln in info.get("log_tail") or [] if ln.strip()][-3:]
            row["error"] = (f"the receiver on {receiver} did not start: "
                            f"{info.get('error') or 'unknown error'}"
                            + (f"; its last log lines: {' / '.join(tail)}" if tail else ""))
        elif not isinstance(res, dict) or res.get("skipped"):
            row["error"] = f"the sender on {sender} did not run"
        else:
            output = _container_output(res)
            probe = parse_kv_probe(output)
            if probe is None:
                last = [ln for ln in output.splitlines() if ln.strip()][-3:]
                row["error"] = (f"the probe container on {sender} printed no result "
                                f"({' / '.join(last) or 'no output'})")
            else:
                row.update({k: probe[k] for k in KV_PROBE_FIELDS if k in probe})
                row["ok"] = bool(probe.get("ok"))
                row["error"] = probe.get("error")
        row["ib_write_bw"] = (ib or {}).get(pair) or _ib_skipped(sender, receiver, settings)
        out.append(row)
    return out


def _kv_fix(pair: dict) -> str:
    error = str(pair.get("error") or "")
    receiver, sender = pair.get("receiver"), pair.get("sender")
    control = pair.get("control") or "the probe port"
    if "did not start" in error and "Error connecting" in error:
        return (f"start dockerd on {receiver} and let the Ansible user use its socket "
                "(docker.reachable), or set preflight_docker_socket")
    if "did not start" in error:
        return (f"see the receiver's log lines in {receiver}.json; the probe needs Mooncake in "
                "the image (preflight_kv_probe_image), and for rdma the devices, IPC_LOCK and "
                "memlock the workers get")
    if "cannot reach its control port" in error or "refused the transfer" in error:
        return (f"let {sender} reach {control} over TCP (firewall, routes, "
                "disagg_host_address), or move preflight_kv_probe_port if it is taken")
    if "Mooncake" in error or "hung" in error:
        return (f"open Mooncake's ports (RPC 15000-17000, TCP transport) between {sender} and "
                f"{receiver}; for rdma check the devices (preflight_kv_probe_devices), "
                "MC_GID_INDEX and that both ports are ACTIVE on the same fabric")
    return f"run the probe by hand (roles/preflight/README.md, KV path) between {sender} and " \
        f"{receiver}"


def kv_pair_findings(pair: dict, min_gbps: object = None, ib_min_gbps: object = None) -> list:
    """The findings of one probed pair (host = ``sender->receiver``)."""
    name = str(pair.get("pair"))
    proto = pair.get("protocol") or "?"
    dev = f" {pair['device']}" if pair.get("device") else ""
    low = float(pair.get("min_gbps") if min_gbps is None else min_gbps or 0)
    expected = f">= {low:g} Gbit/s, verified ({proto}{dev})"
    out = []
    if not pair.get("ok"):
        if pair.get("gbps") is not None and pair.get("verified") is False and \
                "different bytes" in str(pair.get("error")):
            found = f"{_gbit(pair['gbps'])} Gbit/s but the bytes arrived corrupted"
            fix = ("check NIC firmware, PCIe ACS/IOMMU (host.iommu) and that both hosts run the "
                   "same Mooncake")
        else:
            found = f"no transfer ({pair.get('error') or 'unknown error'})"
            fix = _kv_fix(pair)
        out.append(_finding(name, "kv.path", found, expected, fix))
    elif low and float(pair.get("gbps") or 0) < low:
        size = _human_bytes(int(pair.get("bytes") or 0))
        found = (f"{_gbit(pair['gbps'])} Gbit/s ({proto}{dev}, {size} in "
                 f"{float(pair.get('seconds') or 0):.3g} s)")
        if proto == "rdma":
            fix = ("check the devices Mooncake uses (preflight_kv_probe_devices = "
                   "--disaggregation-ib-device), their rate and MTU (rdma.* rows), MC_GID_INDEX "
                   "and PFC/ECN on the switch ports; or lower preflight_kv_probe_min_gbps")
        else:
            fix = ("check the network between the hosts (iperf3), or use rdma "
                   "(preflight_kv_probe_protocol) where the hosts have RDMA NICs; or lower "
                   "preflight_kv_probe_min_gbps")
        out.append(_finding(name, "kv.path", found, expected, fix))
    ib = pair.get("ib_write_bw") or {}
    ib_low = float(pair.get("ib_min_gbps") if ib_min_gbps is None else ib_min_gbps or 0)
    if ib.get("status") == "failed":
        out.append(_finding(name, "kv.ib_write_bw", f"no result ({ib.get('note')})",
                            f"ib_write_bw >= {ib_low:g} Gbit/s" if ib_low else "a result",
                            "run the same ib_write_bw pair by hand (see the report's command); "
                            "check the device and GID index (-d, -x) and the port state"))
    elif ib.get("status") == "ran" and ib_low and float(ib.get("gbps") or 0) < ib_low:
        out.append(_finding(name, "kv.ib_write_bw", f"{_gbit(ib['gbps'])} Gbit/s",
                            f">= {ib_low:g} Gbit/s",
                            "check the link rate (ethtool), PCIe width (lspci -vv) and "
                            "PFC/ECN; or lower preflight_kv_probe_ib_min_gbps"))
    return out


def evaluate_kv_path(pairs: object, t: dict) -> list[dict]:
    """Findings of every pair a sender host probed (none when the probe did not run)."""
    if not isinstance(pairs, list):
        return []
    out = []
    for pair in pairs:
        if isinstance(pair, dict):
            out += kv_pair_findings(pair, t.get("kv_min_gbps"), t.get("kv_ib_min_gbps"))
    return out


def kv_markdown(pairs: list[dict]) -> list[str]:
    """Lines of the KV path section: one row per probed pair, passing or not."""
    rows = sorted((p for p in pairs if isinstance(p, dict)), key=lambda p: str(p.get("pair")))
    lines = ["", "## KV path", "",
             f"{len(rows)} prefill->decode pairs probed (Mooncake write of deterministic bytes, "
             "verified on the receiver; ib_write_bw where perftest is installed on both hosts).",
             "", "| pair | protocol | Mooncake | expected | verified | ib_write_bw | result |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in rows:
        dev = f" {p['device']}" if p.get("device") else ""
        if p.get("gbps") is not None:
            moved = (f"{_gbit(p['gbps'])} Gbit/s ({_human_bytes(int(p.get('bytes') or 0))} in "
                     f"{float(p.get('seconds') or 0):.3g} s)")
        else:
            moved = "no transfer"
        ib = p.get("ib_write_bw") or {}
        if ib.get("status") == "ran":
            ib_cell = f"{_gbit(ib.get('gbps'))} Gbit/s"
        else:
            ib_cell = f"{ib.get('status', 'skipped')}: {ib.get('note') or '-'}"
        problems = kv_pair_findings(p)
        result = "pass" if not problems else "FAIL: " + "; ".join(
            f"{f['check']} {f['found']}" for f in problems)
        lines.append("| " + " | ".join(_cell(c) for c in (
            p.get("pair"), f"{p.get('protocol')}{dev}", moved,
            f">= {float(p.get('min_gbps') or 0):g} Gbit/s",
            "yes" if p.get("verified") else "no", ib_cell, result)) + " |")
    return lines
