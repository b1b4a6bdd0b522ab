#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402, E501  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_tunables
short_description: Gather the kernel, limit, disk, port and Docker settings that PD serving needs
version_added: 0.1.0
description:
  - Reads C(kernel.numa_balancing), the IOMMU mode from C(/proc/cmdline), the memlock and
    open-files limits from C(/proc/self/limits) (as the process running the module, that is as a
    container sees it when run inside one), hugepages from C(/proc/meminfo), the CPU frequency
    governors, C(vm.max_map_count), clock synchronisation (best effort), what the model directory
    holds and the free disk there, which of the given TCP ports already listen, and the Docker
    daemon (C(GET /info) over its unix socket, plus C(/etc/docker/daemon.json)).
  - Never changes anything on the host.
extends_documentation_fragment:
  - inferops.disagg._preflight_facts
  - inferops.disagg._attributes
  - inferops.disagg._attributes.read_only
  - inferops.disagg._attributes.facts
  - inferops.disagg._attributes.platform
attributes:
  platform:
    platforms: posix
options:
  model_path:
    description:
      - Directory that must hold the model (C(config.json) and C(*.safetensors)); also where the
        free disk is measured. Nothing is checked when omitted.
    type: path
  ports:
    description:
      - TCP ports that must be free; those found listening are returned in
        RV(ansible_facts.host_tunables.ports.busy).
    type: list
    elements: int
    default: []
  check_docker:
    description:
      - Query the Docker daemon.
    type: bool
    default: true
  docker_socket:
    description:
      - The daemon's unix socket. Defaults to C(/var/run/docker.sock) under O(root).
    type: path
  docker_timeout:
    description:
      - Seconds to wait for the daemon.
    type: float
    default: 5.0
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Gather host tunables, checking the model and the serving ports
  inferops.disagg.host_tunables:
    model_path: /models/DeepSeek-R1
    ports: [30000, 8998]

- name: Without Docker (plain container)
  inferops.disagg.host_tunables:
    check_docker: false
"""

RETURN = r"""
ansible_facts:
  description: Facts under the C(host_tunables) key.
  returned: always
  type: dict
  contains:
    host_tunables:
      description: The settings found.
      returned: always
      type: dict
      contains:
        numa_balancing:
          description: Value of C(kernel.numa_balancing) (null when the file is absent).
          type: int
          returned: always
          sample: 0
        iommu:
          description: C(mode) (C(pt), C(off) or C(translated)) and the iommu C(tokens) of the command line.
          type: dict
          returned: always
          sample: {"mode": "pt", "tokens": ["iommu=pt"]}
        memlock:
          description:
            - C(soft_bytes) and C(hard_bytes) (-1 is unlimited), C(source), C(in_container).
          type: dict
          returned: always
          sample: {"soft_bytes": -1, "hard_bytes": -1, "source": "/proc/self/limits (in a container)", "in_container": true}
        nofile:
          description: C(soft) and C(hard) open-files limits.
          type: dict
          returned: always
          sample: {"soft": 1048576, "hard": 1048576}
        hugepages:
          description: Hugepage counters and the memory size.
          type: dict
          returned: always
          sample: {"hugepages_total": 0, "hugepages_free": 0, "hugepage_size_bytes": 2097152, "mem_total_bytes": 2164203520000}
        cpu_governor:
          description: C(values) (governor to CPU count), C(all) (the one governor, or null), C(cpus).
          type: dict
          returned: always
          sample: {"values": {"performance": 192}, "all": "performance", "cpus": 192}
        max_map_count:
          description: Value of C(vm.max_map_count).
          type: int
          returned: always
          sample: 65530
        clock:
          description: C(synchronized) (true, false or null when unknown) and its C(source).
          type: dict
          returned: always
          sample: {"synchronized": true, "source": "timedatectl"}
        model:
          description: C(path), C(exists), C(config_json), C(safetensors) (count), C(weights_bytes), C(free_bytes).
          type: dict
          returned: always
          sample: {"path": "/models/m", "exists": true, "config_json": true, "safetensors": 2, "weights_bytes": 1024, "free_bytes": 1099511627776}
        ports:
          description: The TCP ports checked, listening and busy.
          type: dict
          returned: always
          contains:
            checked:
              description: The ports of O(ports), sorted.
              type: list
              elements: int
              returned: always
              sample: [8998, 30000]
            listening:
              description: Every TCP port in state LISTEN.
              type: list
              elements: int
              returned: always
              sample: [22, 30000]
            busy:
              description: The checked ports that already listen.
              type: list
              elements: int
              returned: always
              sample: [30000]
        docker:
          description:
            - C(checked), C(reachable), C(socket), C(error), the daemon's C(server_version),
              C(cgroup_driver), C(cgroup_version), C(default_runtime), C(runtimes), C(daemon_json)
              and C(memlock_default) (what a plain C(docker run) container gets).
          type: dict
          returned: always
          sample:
            checked: true
            reachable: true
            cgroup_driver: systemd
            memlock_default: {"bytes": 65536, "source": "docker default (64 KiB) unless --ulimit memlock=-1:-1"}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferops.disagg.plugins.module_utils._facts_module import run_facts_module
from ansible_collections.inferops.disagg.plugins.module_utils._probe import (
    read_int,
    read_text,
    rooted,
)
from ansible_collections.inferops.disagg.plugins.module_utils._tunables import (
    clock_sync,
    container_memlock_default,
    cpu_governors,
    daemon_limits,
    docker_get,
    in_container,
    iommu_mode,
    listening_ports,
    model_files,
    parse_daemon_json,
    parse_docker_info,
    parse_limits,
    parse_meminfo,
    parse_ulimit_kib,
)


def _memlock(module: AnsibleModule, root: str) -> tuple[dict, dict]:
    inside = in_container(root)
    where = "in a container" if inside else "on the host; a container gets the docker default"
    text = read_text(root, "/proc/self/limits")
    if text is not None:
        limits = parse_limits(text)
        memlock = {"soft_bytes": limits["memlock"]["soft"], "hard_bytes": limits["memlock"]["hard"],
                   "source": f"/proc/self/limits, {where}", "in_container": inside}
        return memlock, limits.get("nofile", {})
    if root == "/":
        rc, out, _err = module.run_command(["/bin/sh", "-c", "ulimit -l"])
        if rc == 0:
            soft = parse_ulimit_kib(out)
            return ({"soft_bytes": soft, "hard_bytes": None, "source": f"ulimit -l, {where}",
                     "in_container": inside}, {})
    return {"soft_bytes": None, "hard_bytes": None, "source": None, "in_container": inside}, {}


def _docker(module: AnsibleModule, root: str) -> dict:
    socket_path = module.params["docker_socket"] or rooted(root, "/var/run/docker.sock")
    daemon = parse_daemon_json(read_text(root, "/etc/docker/daemon.json"))
    out = {"checked": True, "reachable": False, "socket": socket_path, "error": None,
           "daemon_json": daemon,
           "memlock_default": container_memlock_default(daemon, daemon_limits(root))}
    if not os.path.exists(socket_path):
        out["error"] = "socket not found"
        return out
    try:
        status, body = docker_get(socket_path, "/info", module.params["docker_timeout"])
    except OSError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    if status != 200:
        out["error"] = f"GET /info answered HTTP {status}: {body.strip()[:200]}"
        return out
    out.update(parse_docker_info(body, f"docker GET /info on {socket_path}"))
    out["reachable"] = True
    return out


def gather(module: AnsibleModule) -> dict:
    root = module.params["root"]
    sysctl_fix = "read the file by hand; it should hold one number"
    facts: dict = {
        "numa_balancing": read_int(root, "/proc/sys/kernel/numa_balancing",
                                   "host.numa_balancing", sysctl_fix),
        "max_map_count": read_int(root, "/proc/sys/vm/max_map_count", "host.max_map_count",
                                  sysctl_fix),
        "iommu": iommu_mode(read_text(root, "/proc/cmdline") or ""),
        "cpu_governor": cpu_governors(root),
    }
    facts["memlock"], nofile = _memlock(module, root)
    facts["nofile"] = nofile
    meminfo = read_text(root, "/proc/meminfo")
    facts["hugepages"] = parse_meminfo(meminfo) if meminfo is not None else {}
    timedatectl = None
    if root == "/":
        tool = module.get_bin_path("timedatectl")
        if tool:
            rc, out, _err = module.run_command([tool, "show", "-p", "NTPSynchronized", "--value"])
            timedatectl = out if rc == 0 else None
    facts["clock"] = clock_sync(root, timedatectl)
    facts["model"] = model_files(root, module.params["model_path"])
    listening = listening_ports(root)
    checked = sorted(set(module.params["ports"]))
    facts["ports"] = {"checked": checked, "listening": listening,
                      "busy": [p for p in checked if p in listening]}
    facts["docker"] = _docker(module, root) if module.params["check_docker"] else {
        "checked": False}
    return facts


def main() -> None:
    """Run the module."""
    run_facts_module(
        {
            "model_path": {"type": "path"},
            "ports": {"type": "list", "elements": "int", "default": []},
            "check_docker": {"type": "bool", "default": True},
            "docker_socket": {"type": "path"},
            "docker_timeout": {"type": "float", "default": 5.0},
        },
        "host_tunables", "host.facts", gather,
    )


if __name__ == "__main__":
    main()
