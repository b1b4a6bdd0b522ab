# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE parsers for host tunables read from /proc, /sys and the Docker daemon (not public).

Each ``parse_*`` takes the text of one file (or one HTTP body) and raises :class:`ProbeError`
when it is malformed. :func:`docker_get` talks HTTP over the daemon's unix socket with the stdlib.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import socket
from collections import Counter

from ansible_collections.inferops.disagg.plugins.module_utils._probe import (
    ProbeError,
    read_text,
    rooted,
)

#: What ``docker run`` gives a container unless ``--ulimit memlock=-1:-1`` (or daemon.json
#: ``default-ulimits``) says otherwise: the 64 KiB RLIMIT_MEMLOCK default.
DOCKER_DEFAULT_MEMLOCK = 65536
UNLIMITED = -1


def _limit(value: str) -> int:
    return UNLIMITED if value == "unlimited" else int(value)


def parse_limits(text: str, source: str = "/proc/self/limits") -> dict:
    """``{"memlock": {"soft": n, "hard": n}, "nofile": {...}}``; -1 means unlimited (bytes)."""
    fix = "read the file by hand; it should be the kernel's limits table"
    wanted = {"max locked memory": "memlock", "max open files": "nofile"}
    out: dict[str, dict] = {}
    for line in (text or "").splitlines():
        low = line.lower()
        for label, key in wanted.items():
            if low.startswith(label):
                fields = line[len(label):].split()
                try:
                    out[key] = {"soft": _limit(fields[0]), "hard": _limit(fields[1])}
                except (IndexError, ValueError):
                    raise ProbeError(source, f"cannot read {label!r} from {line.strip()!r}",
                                     "host.memlock" if key == "memlock" else "host.nofile",
                                     fix) from None
    if "memlock" not in out:
        raise ProbeError(source, "no 'Max locked memory' line", "host.memlock", fix)
    return out


def parse_ulimit_kib(text: str) -> int:
    """``ulimit -l`` prints KiB or ``unlimited``; return bytes (-1 for unlimited)."""
    value = (text or "").strip()
    if value == "unlimited":
        return UNLIMITED
    if not value.isdigit():
        raise ProbeError("ulimit -l", f"expected a number or 'unlimited', found {value!r}",
                         "host.memlock", "run `ulimit -l` in the same shell")
    return int(value) * 1024


def iommu_mode(cmdline: str) -> dict:
    """IOMMU mode from the kernel command line.

    ``pt`` for ``iommu=pt`` (or ``amd_iommu=pt``/``intel_iommu=pt``), ``off`` for
    ``iommu=off``/``amd_iommu=off``, otherwise ``translated`` (the DMA-remapping default).
    """
    tokens = [t for t in (cmdline or "").split() if "iommu" in t.lower()]
    values = {}
    for token in tokens:
        key, _sep, value = token.partition("=")
        values[key.lower()] = value.lower()
    mode = "translated"
    if any(values.get(k) == "off" for k in ("iommu", "amd_iommu", "intel_iommu")):
        mode = "off"
    if any("pt" in values.get(k, "").split(",") for k in ("iommu", "amd_iommu", "intel_iommu")):
        mode = "pt"
    return {"mode": mode, "tokens": tokens}


def parse_meminfo(text: str, source: str = "/proc/meminfo") -> dict:
    """Hugepage counters from /proc/meminfo (sizes in bytes)."""
    values = {}
    for line in (text or "").splitlines():
        match = re.match(r"^([A-Za-z_()0-9]+):\s+(\d+)(?:\s+kB)?\s*$", line.strip())
        if match:
            values[match.group(1)] = int(match.group(2))
    if "MemTotal" not in values:
        raise ProbeError(source, "no MemTotal line", "host.hugepages", "read the file by hand")
    return {
        "mem_total_bytes": values["MemTotal"] * 1024,
        "hugepages_total": values.get("HugePages_Total", 0),
        "hugepages_free": values.get("HugePages_Free", 0),
        "hugepage_size_bytes": values.get("Hugepagesize", 0) * 1024,
    }


def cpu_governors(root: str) -> dict:
    """Count ``scaling_governor`` values over all CPUs (empty when cpufreq is not exposed)."""
    counts: Counter = Counter()
    pattern = rooted(root, "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")
    for path in glob.glob(pattern):
        try:
            with open(path, encoding="utf-8") as fh:
                counts[fh.read().strip()] += 1
        except OSError:
            continue
    values = dict(sorted(counts.items()))
    return {"values": values, "all": next(iter(values)) if len(values) == 1 else None,
            "cpus": sum(values.values())}


def listening_ports(root: str) -> list[int]:
    """TCP ports in LISTEN state from /proc/net/tcp and tcp6 under ``root``."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        text = read_text(root, name)
        if not text:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4:
                continue
            local, state = fields[1], fields[3]
            if state != "0A" or ":" not in local:
                continue
            try:
                ports.add(int(local.rsplit(":", 1)[1], 16))
            except ValueError:
                raise ProbeError(name, f"bad local address {local!r}", "host.ports",
                                 "read the file by hand") from None
    return sorted(ports)


def model_files(root: str, path: str | None) -> dict:
    """What the model directory holds: config.json and ``*.safetensors`` weights, and free disk."""
    out = {"path": path, "exists": False, "config_json": False, "safetensors": 0,
           "weights_bytes": 0, "free_bytes": None}
    if not path:
        return out
    full = rooted(root, path)
    probe = full
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        stat = os.statvfs(probe)
        out["free_bytes"] = stat.f_bavail * stat.f_frsize
    except OSError:
        pass
    if not os.path.isdir(full):
        return out
    out["exists"] = True
    out["config_json"] = os.path.isfile(os.path.join(full, "config.json"))
    weights = glob.glob(os.path.join(full, "*.safetensors"))
    out["safetensors"] = len(weights)
    out["weights_bytes"] = sum(os.path.getsize(w) for w in weights if os.path.isfile(w))
    return out


def clock_sync(root: str, timedatectl_output: str | None = None) -> dict:
    """Best-effort clock sync: timedatectl, then systemd-timesyncd / chrony state files."""
    if timedatectl_output is not None:
        value = timedatectl_output.strip().lower()
        if value in ("yes", "no"):
            return {"synchronized": value == "yes", "source": "timedatectl"}
    if os.path.exists(rooted(root, "/run/systemd/timesync/synchronized")):
        return {"synchronized": True, "source": "/run/systemd/timesync/synchronized"}
    tracking = read_text(root, "/run/chrony/tracking")  # written by `chronyc -n tracking` hooks
    if tracking:
        match = re.search(r"Leap status\s*:\s*(.+)", tracking)
        if match:
            return {"synchronized": match.group(1).strip().lower() == "normal",
                    "source": "/run/chrony/tracking"}
    return {"synchronized": None, "source": None}


def parse_daemon_json(text: str | None, source: str = "/etc/docker/daemon.json") -> dict:
    """Docker daemon settings that matter here: default-ulimits, cgroup driver (exec-opts)."""
    if text is None:
        return {"present": False, "default_ulimits": {}, "exec_opts": []}
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ProbeError(source, f"malformed JSON ({exc})", "docker.settings",
                         "fix the file (dockerd refuses to start with it too)") from None
    if not isinstance(doc, dict):
        raise ProbeError(source, "expected a JSON object", "docker.settings", "fix the file")
    ulimits = doc.get("default-ulimits") or {}
    return {"present": True, "default_ulimits": ulimits if isinstance(ulimits, dict) else {},
            "exec_opts": list(doc.get("exec-opts") or [])}


def daemon_limits(root: str) -> dict | None:
    """The limits of the running dockerd (containers inherit its RLIMIT_MEMLOCK by default)."""
    for comm in sorted(glob.glob(rooted(root, "/proc/[0-9]*/comm"))):
        try:
            with open(comm, encoding="utf-8") as fh:
                if fh.read().strip() != "dockerd":
                    continue
            with open(os.path.join(os.path.dirname(comm), "limits"), encoding="utf-8") as fh:
                return parse_limits(fh.read(), "/proc/<dockerd>/limits")
        except (OSError, ProbeError):
            continue
    return None


def container_memlock_default(daemon: dict, dockerd: dict | None = None) -> dict:
    """The memlock a plain ``docker run`` container gets.

    daemon.json ``default-ulimits`` wins; otherwise containers inherit dockerd's own limit
    (64 KiB on older systemd, 8 MiB with systemd >= 253); when dockerd is not visible, Docker's
    historical 64 KiB is assumed. ``--ulimit memlock=-1:-1`` overrides all of these.
    """
    entry = daemon.get("default_ulimits", {}).get("memlock")
    if isinstance(entry, dict):
        soft = entry.get("Soft", entry.get("soft"))
        if isinstance(soft, int):
            return {"bytes": soft, "source": "daemon.json default-ulimits"}
    if dockerd and "memlock" in dockerd:
        return {"bytes": dockerd["memlock"]["soft"],
                "source": "inherited from dockerd's limits unless --ulimit memlock=-1:-1"}
    return {"bytes": DOCKER_DEFAULT_MEMLOCK,
            "source": "docker default (64 KiB) unless --ulimit memlock=-1:-1"}


def parse_docker_info(body: str, source: str = "docker GET /info") -> dict:
    """The daemon's runtime settings from the ``GET /info`` body."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ProbeError(source, f"malformed JSON ({exc})", "docker.reachable",
                         "check the socket is the Docker daemon's (curl --unix-socket ... /info)"
                         ) from None
    if not isinstance(doc, dict) or "ServerVersion" not in doc:
        raise ProbeError(source, "not a Docker /info document (no ServerVersion)",
                         "docker.reachable", "check the socket is the Docker daemon's")
    return {
        "server_version": doc.get("ServerVersion"),
        "cgroup_driver": doc.get("CgroupDriver"),
        "cgroup_version": doc.get("CgroupVersion"),
        "default_runtime": doc.get("DefaultRuntime"),
        "runtimes": sorted((doc.get("Runtimes") or {}).keys()),
        "storage_driver": doc.get("Driver"),
        "kernel_version": doc.get("KernelVersion"),
    }


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def docker_get(socket_path: str, path: str = "/info", timeout: float = 5.0) -> tuple[int, str]:
    """``GET path`` on the Docker API over a unix socket; returns (status, body). Raises OSError."""
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("GET", path, headers={"Host": "docker"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", errors="replace")
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {exc}") from None
    finally:
        conn.close()


def in_container(root: str) -> bool:
    """Whether the probe runs inside a container (``/.dockerenv`` or container cgroup paths)."""
    if os.path.exists(rooted(root, "/.dockerenv")) or os.path.exists(
            rooted(root, "/run/.containerenv")):
        return True
    cgroup = read_text(root, "/proc/1/cgroup") or ""
    return bool(re.search(r"docker|containerd|kubepods|libpod", cgroup))
