#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402, E501  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: rdma_facts
short_description: Gather RDMA device, port and RoCE GID facts from sysfs or ibv_devinfo
version_added: 0.1.0
description:
  - Reads C(/sys/class/infiniband/*/ports/*/{state,phys_state,link_layer,rate,gids,gid_attrs}),
    the device NUMA node and the netdev MTU from C(/sys/class/net/<netdev>/mtu).
  - Falls back to C(ibv_devinfo -v) when C(/sys/class/infiniband) is absent, and to C(ibstat),
    C(show_gids) and C(rdma -j link show) (whichever are installed) when C(ibv_devinfo) is absent
    or fails.
  - With O(saved_outputs), no command runs and nothing of the host is read; the facts come from
    saved outputs of the tools (a support bundle, a bug report), for checking them offline.
  - Per port it returns the index of the RoCE v2 GID of the form C(::ffff:a.b.c.d), which is what
    Mooncake's C(MC_GID_INDEX) must be, and the active MTU (derived from the netdev MTU for RoCE).
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
  ibv_devinfo_path:
    description:
      - Path of C(ibv_devinfo) for the fallback. By default it is looked up on C(PATH) (under
        O(root) when O(root) is not C(/)).
    type: path
  saved_outputs:
    description:
      - Directory of saved command outputs of one host to read instead of the host,
        C(ibv_devinfo-v.txt) (C(ibv_devinfo -v)); when it is absent, any of C(ibstat.txt)
        (C(ibstat)), C(show_gids.txt) (C(show_gids)) and C(rdma-link.json) or C(rdma-link.txt)
        (C(rdma -j link show) or C(rdma link show)).
      - O(root) and O(ibv_devinfo_path) are not used; RV(ansible_facts.rdma.uverbs) is null (not
        in the outputs).
    type: path
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Gather RDMA facts
  inferops.disagg.rdma_facts:

- name: Check a support bundle's saved outputs of one host (ibv_devinfo-v.txt, ...)
  inferops.disagg.rdma_facts:
    saved_outputs: /srv/bundles/node-17/rdma

- name: Show the MC_GID_INDEX this host needs
  ansible.builtin.debug:
    msg: "MC_GID_INDEX={{ ansible_facts.rdma.mc_gid_index }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under the C(rdma) key.
  returned: always
  type: dict
  contains:
    rdma:
      description: The RDMA picture of the host.
      returned: always
      type: dict
      contains:
        source:
          description: C(sysfs), C(ibv_devinfo), the C(+)-joined text outputs read (C(ibstat+show_gids+rdma_link)) or C(none).
          type: str
          returned: always
          sample: sysfs
        devices:
          description:
            - One entry per RDMA device with C(name), C(numa_node), C(fw_ver), C(node_guid),
              C(board_id) and C(ports).
            - Each port has C(port), C(state), C(phys_state), C(link_layer), C(rate), C(rate_gbps),
              C(netdev), C(netdev_mtu), C(active_mtu), C(gids), C(roce_v2_ipv4_gid_index),
              C(roce_v2_ipv4_gid) and C(roce_v2_ipv4).
          type: list
          elements: dict
          returned: always
          sample:
            - name: mlx5_0
              numa_node: 0
              ports:
                - port: 1
                  state: ACTIVE
                  phys_state: LinkUp
                  link_layer: Ethernet
                  rate: 400 Gb/sec (4X NDR)
                  netdev: ens12np0
                  netdev_mtu: 9000
                  active_mtu: 4096
                  roce_v2_ipv4_gid_index: 3
                  roce_v2_ipv4_gid: "::ffff:10.14.1.72"
        uverbs:
          description: The C(/dev/infiniband/uverbs*) nodes visible (a container needs them mapped in); null with O(saved_outputs).
          type: list
          elements: str
          returned: always
          sample: [uverbs0, uverbs1]
        incomplete_devices:
          description:
            - Devices whose C(ibv_devinfo) output was cut (no port lines, fewer ports than
              C(phys_port_cnt), a port without a state), each as the device name, a colon and
              why. Preflight reports them as an C(rdma.facts) finding.
          type: list
          elements: str
          returned: always
          sample: ["mlx5_3: no port lines after its hca_id (output cut?)"]
        saved_outputs:
          description: The O(saved_outputs) directory the facts were read from.
          type: str
          returned: when O(saved_outputs) is set
          sample: /srv/bundles/node-17/rdma
        device_count:
          description: Number of RDMA devices.
          type: int
          returned: always
          sample: 8
        active_port_count:
          description: Number of ports in state ACTIVE.
          type: int
          returned: always
          sample: 8
        roce_v2_ipv4_gid_indices:
          description: The distinct RoCE v2 IPv4 GID indices over all ports.
          type: list
          elements: int
          returned: always
          sample: [3]
        mc_gid_index:
          description: The one value MC_GID_INDEX can take on this host (null when ports disagree or none has such a GID).
          type: int
          returned: always
          sample: 3
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferops.disagg.plugins.module_utils._facts_module import (
    find_tool,
    run_facts_module,
)
from ansible_collections.inferops.disagg.plugins.module_utils._rdma import (
    parse_ibv_devinfo,
    summarize,
    sysfs_devices,
    uverbs_nodes,
)
from ansible_collections.inferops.disagg.plugins.module_utils._rdma_text import (
    devices_from_outputs,
)
from ansible_collections.inferops.disagg.plugins.module_utils._saved_outputs import (
    rdma_facts_from_dir,
)

#: The text tools tried when ibv_devinfo is absent or fails: (name, arguments, keyword).
TEXT_TOOLS = (("ibstat", [], "ibstat"), ("show_gids", [], "show_gids"),
              ("rdma", ["-j", "link", "show"], "rdma_link"))


def _run(module: AnsibleModule, argv: list[str], facts: dict) -> str | None:
    """Stdout of ``argv``, or None (the reason appended to ``facts["fallbacks"]``)."""
    rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
    if rc != 0:
        facts["fallbacks"].append(f"{' '.join(argv)} exited {rc}: "
                                  f"{(err or out).strip()[:200]}")
        return None
    return out


def _text_tools(module: AnsibleModule, root: str, facts: dict) -> None:
    """Devices from ibstat, show_gids and rdma link, whichever are installed and answer."""
    texts: dict[str, str | None] = {}
    for name, args, keyword in TEXT_TOOLS:
        tool = find_tool(module, name, None, root)
        if not tool:
            facts["fallbacks"].append(f"{name}: not found")
            continue
        texts[keyword] = _run(module, [tool, *args], facts)
    texts = {k: v for k, v in texts.items() if v is not None}
    if texts:
        facts.update(source="+".join(texts), devices=devices_from_outputs(**texts))


def gather(module: AnsibleModule) -> dict:
    if module.params.get("saved_outputs"):
        return rdma_facts_from_dir(module.params["saved_outputs"])
    root = module.params["root"]
    facts = {"source": "none", "fallbacks": [], "devices": []}
    devices = sysfs_devices(root)
    if devices is not None:
        facts.update(source="sysfs", devices=devices)
    else:
        facts["fallbacks"].append("/sys/class/infiniband: absent")
        tool = find_tool(module, "ibv_devinfo", module.params["ibv_devinfo_path"], root)
        out = _run(module, [tool, "-v"], facts) if tool else None
        if not tool:
            facts["fallbacks"].append("ibv_devinfo: not found")
        if out is not None:
            facts.update(source="ibv_devinfo", devices=parse_ibv_devinfo(out))
        else:
            _text_tools(module, root, facts)
    facts["uverbs"] = uverbs_nodes(root)
    facts.update(summarize(facts["devices"]))
    return facts


def main() -> None:
    """Run the module."""
    run_facts_module({"ibv_devinfo_path": {"type": "path"}, "saved_outputs": {"type": "path"}},
                     "rdma", "rdma.facts", gather)


if __name__ == "__main__":
    main()
