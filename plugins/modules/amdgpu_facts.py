#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402, E501  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)

from __future__ import annotations

DOCUMENTATION = r"""
module: amdgpu_facts
short_description: Gather AMD GPU facts from amd-smi, rocm-smi or sysfs
version_added: 0.1.0
description:
  - Reads the AMD GPUs of a host for preflight checks, trying in order C(amd-smi) JSON
    (C(static), C(version), C(topology)), then C(rocm-smi --json), then sysfs
    (C(/sys/class/drm/card*/device), C(/sys/class/kfd)).
  - A tool that is absent or exits non-zero makes the module fall back to the next source (the
    reason is returned in RV(ansible_facts.amdgpu.fallbacks)); a tool that answers with output
    that cannot be parsed fails the module with a message naming the command, the check and the
    fix.
  - When C(amd-smi static --json) or C(rocm-smi ... --json) exits non-zero (a tool without
    C(--json)), the same command without C(--json) is run and its text parsed.
  - With O(saved_outputs), no command runs and nothing of the host is read; the facts come from
    saved outputs of the tools (a support bundle, a bug report), for checking them offline.
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
  amd_smi_path:
    description:
      - Path of C(amd-smi). By default it is looked up on C(PATH) and in C(/opt/rocm/bin) (under
        O(root) when O(root) is not C(/)).
    type: path
  rocm_smi_path:
    description:
      - Path of C(rocm-smi), looked up like O(amd_smi_path) by default.
    type: path
  sources:
    description:
      - The sources to try, in order.
    type: list
    elements: str
    choices: [amd-smi, rocm-smi, sysfs]
    default: [amd-smi, rocm-smi, sysfs]
  saved_outputs:
    description:
      - Directory of saved command outputs of one host to read instead of running the tools,
        under these names (the first GPU listing present wins, in this order)
        C(amd-smi-static.json) (C(amd-smi static --json)), C(amd-smi-static.txt)
        (C(amd-smi static)), C(rocm-smi.json) (C(rocm-smi ... --json)), C(rocm-smi.txt)
        (C(rocm-smi --showproductname ...) lines or the Concise Info table of C(rocm-smi)),
        C(amd-smi-list.txt) (C(amd-smi list), count and BDFs only); and, when present,
        C(amd-smi-version.json) or C(amd-smi-version.txt) and C(amd-smi-topology.json).
      - O(root), O(sources) and the tool paths are not used; RV(ansible_facts.amdgpu.devices)
        values are null (not in the outputs).
    type: path
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Gather GPU facts
  inferops.disagg.amdgpu_facts:

- name: Replay a recorded host tree (its opt/rocm/bin/amd-smi prints recorded JSON)
  inferops.disagg.amdgpu_facts:
    root: /srv/fixtures/mi300x-fit

- name: Check a support bundle's saved outputs of one host (amd-smi-static.json, ...)
  inferops.disagg.amdgpu_facts:
    saved_outputs: /srv/bundles/node-17/gpu

- name: Count the GPUs
  ansible.builtin.debug:
    msg: "{{ ansible_facts.amdgpu.gpu_count }} x {{ ansible_facts.amdgpu.gpus[0].product }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under the C(amdgpu) key.
  returned: always
  type: dict
  contains:
    amdgpu:
      description: The GPU picture of the host.
      returned: always
      type: dict
      contains:
        source:
          description: Where the GPU list came from (C(amd-smi), C(rocm-smi), C(sysfs), C(amd-smi list) or C(none)).
          type: str
          returned: always
          sample: amd-smi
        tools:
          description: Paths of C(amd-smi) and C(rocm-smi) (null when absent).
          type: dict
          returned: always
          sample: {"amd_smi": "/opt/rocm/bin/amd-smi", "rocm_smi": "/opt/rocm/bin/rocm-smi"}
        fallbacks:
          description: Why earlier sources were skipped.
          type: list
          elements: str
          returned: always
          sample: ["amd-smi: not found"]
        gpu_count:
          description: Number of GPUs.
          type: int
          returned: always
          sample: 8
        gpus:
          description:
            - One entry per GPU with C(index), C(product), C(gfx_target), C(device_id),
              C(vram_total_bytes), C(bdf), C(numa_node), C(driver_version) and C(source).
          type: list
          elements: dict
          returned: always
          sample:
            - index: 0
              product: AMD Instinct MI300X
              gfx_target: gfx942
              device_id: "0x74a1"
              vram_total_bytes: 206141652992
              bdf: "0000:0c:00.0"
              numa_node: 0
              driver_version: 6.8.5
              source: amd-smi
        versions:
          description: C(rocm), C(amd_smi), C(amdsmi_library) and C(driver) versions (null when unknown).
          type: dict
          returned: always
          sample: {"rocm": "6.2.2", "amd_smi": "24.6.3+9578815", "amdsmi_library": "24.6.3.0", "driver": "6.8.5"}
        xgmi:
          description:
            - C(available), C(links) (BDF to the BDFs it reaches over xGMI), C(full_mesh) and
              C(min_peers).
          type: dict
          returned: always
          sample: {"available": true, "full_mesh": true, "min_peers": 7, "links": {}}
        devices:
          description: Whether C(/dev/kfd) exists and how many C(/dev/dri/renderD*) nodes there are (null with O(saved_outputs)).
          type: dict
          returned: always
          sample: {"kfd": true, "dri_render": 8}
        saved_outputs:
          description: The O(saved_outputs) directory the facts were read from.
          type: str
          returned: when O(saved_outputs) is set
          sample: /srv/bundles/node-17/gpu
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferops.disagg.plugins.module_utils._amdgpu import (
    parse_amd_smi_static,
    parse_amd_smi_topology,
    parse_amd_smi_version,
    parse_rocm_smi,
    rocm_version_from_tree,
    sysfs_gpus,
    xgmi_by_bdf,
    xgmi_summary,
)
from ansible_collections.inferops.disagg.plugins.module_utils._amdgpu_text import (
    parse_amd_smi_static_text,
    parse_rocm_smi_text,
)
from ansible_collections.inferops.disagg.plugins.module_utils._facts_module import (
    find_tool,
    run_facts_module,
)
from ansible_collections.inferops.disagg.plugins.module_utils._probe import read_text, rooted
from ansible_collections.inferops.disagg.plugins.module_utils._saved_outputs import (
    gpu_facts_from_dir,
)

ROCM_BIN = ("/opt/rocm/bin",)
ROCM_SMI_ARGS = ["--showproductname", "--showbus", "--showmeminfo", "vram", "--showtoponuma",
                 "--showtopotype", "--showdriverversion", "--json"]


def run(module: AnsibleModule, argv: list[str]) -> tuple[int, str, str]:
    return module.run_command(argv, environ_update={"LC_ALL": "C", "LANG": "C"})


def _short(err: str, out: str) -> str:
    text = (err or out or "").strip().splitlines()
    return text[-1][:200] if text else "no output"


def gather(module: AnsibleModule) -> dict:
    if module.params.get("saved_outputs"):
        return gpu_facts_from_dir(module.params["saved_outputs"])
    root = module.params["root"]
    tools = {
        "amd_smi": find_tool(module, "amd-smi", module.params["amd_smi_path"], root, ROCM_BIN),
        "rocm_smi": find_tool(module, "rocm-smi", module.params["rocm_smi_path"], root, ROCM_BIN),
    }
    facts = {"source": "none", "tools": tools, "fallbacks": [], "gpus": [],
             "versions": {"rocm": None, "amd_smi": None, "amdsmi_library": None, "driver": None},
             "xgmi": xgmi_summary(None)}
    links = None
    for source in module.params["sources"]:
        if source == "amd-smi":
            if not tools["amd_smi"]:
                facts["fallbacks"].append("amd-smi: not found")
                continue
            rc, out, err = run(module, [tools["amd_smi"], "static", "--json"])
            if rc == 0:
                gpus = parse_amd_smi_static(out)
            else:
                facts["fallbacks"].append(f"amd-smi static --json exited {rc}: {_short(err, out)}")
                rc, out, err = run(module, [tools["amd_smi"], "static"])
                if rc != 0:
                    facts["fallbacks"].append(f"amd-smi static exited {rc}: {_short(err, out)}")
                    continue
                gpus = parse_amd_smi_static_text(out)
            version_cmd = ["version", "--json"]
            rc, out, err = run(module, [tools["amd_smi"], *version_cmd])
            if rc != 0:
                version_cmd = ["version"]
                rc, out, err = run(module, [tools["amd_smi"], *version_cmd])
            if rc == 0:
                parsed_version = parse_amd_smi_version(out, " ".join(["amd-smi", *version_cmd]))
                facts["versions"].update({k: v for k, v in parsed_version.items() if v})
            rc, out, err = run(module, [tools["amd_smi"], "topology", "--json"])
            if rc == 0:
                links = xgmi_by_bdf(gpus, parse_amd_smi_topology(out))
            else:
                facts["fallbacks"].append(f"amd-smi topology --json exited {rc}: "
                                          f"{_short(err, out)}")
            facts.update(source="amd-smi", gpus=gpus)
            break
        if source == "rocm-smi":
            if not tools["rocm_smi"]:
                facts["fallbacks"].append("rocm-smi: not found")
                continue
            rc, out, err = run(module, [tools["rocm_smi"], *ROCM_SMI_ARGS])
            if rc == 0:
                parsed = parse_rocm_smi(out, "rocm-smi " + " ".join(ROCM_SMI_ARGS))
            else:
                facts["fallbacks"].append(f"rocm-smi --json exited {rc}: {_short(err, out)}")
                rc, out, err = run(module, [tools["rocm_smi"], *ROCM_SMI_ARGS[:-1]])
                if rc != 0:
                    facts["fallbacks"].append(f"rocm-smi exited {rc}: {_short(err, out)}")
                    continue
                parsed = parse_rocm_smi_text(out, "rocm-smi " + " ".join(ROCM_SMI_ARGS[:-1]))
            links = xgmi_by_bdf(parsed["gpus"], parsed["xgmi"])
            facts.update(source="rocm-smi", gpus=parsed["gpus"])
            break
        if source == "sysfs":
            parsed = sysfs_gpus(root)
            links = parsed["xgmi"]
            facts.update(source="sysfs", gpus=parsed["gpus"])
            break
    if not facts["versions"]["rocm"]:
        facts["versions"]["rocm"] = rocm_version_from_tree(root)
    drivers = [g.get("driver_version") for g in facts["gpus"] if g.get("driver_version")]
    facts["versions"]["driver"] = (drivers[0] if drivers else None) or read_text(
        root, "/sys/module/amdgpu/version") or facts["versions"]["driver"]
    if links is None and facts["source"] != "sysfs" and facts["gpus"]:
        links = sysfs_gpus(root)["xgmi"]  # KFD io_links still tell the xGMI picture
    facts["xgmi"] = xgmi_summary(links)
    facts["gpu_count"] = len(facts["gpus"])
    facts["devices"] = {
        "kfd": os.path.exists(rooted(root, "/dev/kfd")),
        "dri_render": len(glob.glob(rooted(root, "/dev/dri/renderD*"))),
    }
    return facts


def main() -> None:
    """Run the module."""
    run_facts_module(
        {
            "amd_smi_path": {"type": "path"},
            "rocm_smi_path": {"type": "path"},
            "sources": {"type": "list", "elements": "str",
                        "choices": ["amd-smi", "rocm-smi", "sysfs"],
                        "default": ["amd-smi", "rocm-smi", "sysfs"]},
            "saved_outputs": {"type": "path"},
        },
        "amdgpu", "gpu.facts", gather,
    )


if __name__ == "__main__":
    main()
