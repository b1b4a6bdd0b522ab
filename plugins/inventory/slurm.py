# Copyright (c) 2026 inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Inventory plugin: a Slurm allocation as proxy / prefill / decode groups."""

from __future__ import annotations

DOCUMENTATION = r"""
name: slurm
short_description: Proxy, prefill and decode groups from a Slurm allocation
version_added: 0.1.0
description:
  - Builds the inventory of a disaggregated prefill/decode deployment from a Slurm allocation,
    the way the seed's C(run_xPyD_models.slurm) assigns roles.
  - The allocation (C(SLURM_JOB_NODELIST) or the O(nodelist) option) is expanded with
    python-hostlist or with the cluster's own C(scontrol show hostnames), in order.
  - The first node is the proxy (router), the next O(xp) nodes are prefill servers, the next
    O(yd) decode servers. With O(colocate_proxy) the router runs on the first prefill node and
    only O(xp) + O(yd) nodes are needed.
  - Counts are checked against the allocation before anything runs, for example
    C(allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5).
  - Every used node gets C(disagg_node_rank), the seed's C(NODE_RANK). Nodes beyond the ones
    needed go to the group C(slurm_spare) (the seed ignores them too).
  - The inventory file name must end in C(.slurm.yml) or C(.slurm.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
requirements:
  - python-hostlist (unless O(hostlist_backend=scontrol))
options:
  plugin:
    description: Token that marks this file as a source for this plugin.
    type: string
    required: true
    choices: ['inferops.disagg.slurm']
  nodelist:
    description:
      - Slurm hostlist expression of the allocation, for example C(node[01-04,07]).
      - Defaults to the job's C(SLURM_JOB_NODELIST) (or C(SLURM_NODELIST)).
    type: string
    env:
      - name: SLURM_JOB_NODELIST
      - name: SLURM_NODELIST
  xp:
    description: Number of prefill nodes, the seed's C(xP).
    type: string
    default: '1'
    env:
      - name: xP
  yd:
    description: Number of decode nodes, the seed's C(yD).
    type: string
    default: '1'
    env:
      - name: yD
  colocate_proxy:
    description:
      - Run the router on the first prefill node instead of a dedicated node, so the
        allocation needs O(xp) + O(yd) nodes instead of O(xp) + O(yd) + 1.
      - Sets C(disagg_colocate_proxy=true) and C(disagg_allow_colocation=true) (the deploy
        refuses a host in two groups without it).
    type: boolean
    default: false
    env:
      - name: DISAGG_COLOCATE_PROXY
  allow_spare_nodes:
    description:
      - Accept an allocation larger than needed; the extra nodes go to group C(slurm_spare).
      - With V(false), an allocation of the wrong size is an error.
    type: boolean
    default: true
  hostlist_backend:
    description:
      - How to expand the nodelist. V(auto) uses python-hostlist when it is installed,
        otherwise C(scontrol show hostnames).
    type: string
    default: auto
    choices: ['auto', 'python-hostlist', 'scontrol']
  scontrol_path:
    description: Path of C(scontrol) for O(hostlist_backend=scontrol); searched on C(PATH) if unset.
    type: path
  job_id:
    description: Slurm job id, kept as C(slurm_job_id) on every host (the seed names logs with it).
    type: string
    env:
      - name: SLURM_JOB_ID
"""

EXAMPLES = r"""
---
# inventories/slurm-example/allocation.slurm.yml: inside `sbatch -N 4` with xP=2 yD=1
plugin: inferops.disagg.slurm

---
# explicit allocation (testing outside a job), router co-located with prefill rank 0
plugin: inferops.disagg.slurm
nodelist: gpu-a[1-2],gpu-b3
xp: 2
yd: 1
colocate_proxy: true
compose:
  ansible_host: inventory_hostname ~ '.fabric.example'
"""

# Imports follow the documentation blocks, as in every Ansible plugin.
import hashlib  # noqa: E402
import json  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable  # noqa: E402
from ansible_collections.inferops.disagg.plugins.module_utils import _slurm  # noqa: E402

VALID_SUFFIXES = (".slurm.yml", ".slurm.yaml")


@dataclass(frozen=True)
class _Inputs:
    """Everything the result depends on (the file's options and the job's environment)."""

    nodelist: str
    xp: int
    yd: int
    colocate_proxy: bool
    allow_spare: bool
    backend: str
    job_id: str


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Groups ``proxy``, ``prefill``, ``decode`` (and ``slurm_spare``) from a Slurm allocation."""

    NAME = "inferops.disagg.slurm"

    def verify_file(self, path: str) -> bool:
        """Accept only readable ``*.slurm.yml`` / ``*.slurm.yaml`` files."""
        return super().verify_file(path) and path.endswith(VALID_SUFFIXES)

    def _inputs(self) -> _Inputs:
        """The options that decide the result, validated (``ValueError`` on bad input)."""
        return _Inputs(
            nodelist=(self.get_option("nodelist") or "").strip(),
            xp=_slurm.parse_count("xP", self.get_option("xp")),
            yd=_slurm.parse_count("yD", self.get_option("yd")),
            colocate_proxy=bool(self.get_option("colocate_proxy")),
            allow_spare=bool(self.get_option("allow_spare_nodes")),
            backend=str(self.get_option("hostlist_backend")),
            job_id=str(self.get_option("job_id") or ""),
        )

    def _expand(self, nodelist: str, backend: str) -> list[str]:
        """Expand the nodelist with the chosen backend."""
        if backend == "python-hostlist" or (backend == "auto" and _slurm.HAS_HOSTLIST):
            return _slurm.expand_nodelist(nodelist)
        return _slurm.scontrol_hostnames(nodelist, self.get_option("scontrol_path"))

    def _compute(self, inputs: _Inputs) -> dict[str, Any]:
        """Expand and assign roles; a JSON-friendly dict (this is what the cache stores)."""
        nodes = self._expand(inputs.nodelist, inputs.backend)
        alloc = _slurm.assign_roles(nodes, inputs.xp, inputs.yd,
                                    colocate_proxy=inputs.colocate_proxy,
                                    allow_spare=inputs.allow_spare)
        return {"nodes": nodes, "proxy": alloc.proxy, "prefill": alloc.prefill,
                "decode": alloc.decode, "spare": alloc.spare, "rank": alloc.rank}

    def _populate(self, result: dict[str, Any], inputs: _Inputs) -> None:
        """Add groups, hosts and variables, then the constructed features."""
        inv = self.inventory
        for group in ("slurm_allocation", "proxy", "prefill", "decode", "slurm_spare"):
            inv.add_group(group)
        common: dict[str, Any] = {
            "disagg_xp": inputs.xp,
            "disagg_yd": inputs.yd,
            "disagg_colocate_proxy": inputs.colocate_proxy,
            "slurm_job_id": inputs.job_id,
            "slurm_job_nodelist": inputs.nodelist,
        }
        if inputs.colocate_proxy:
            # the deploy's inventory check refuses a host in two groups unless this is set
            common["disagg_allow_colocation"] = True
        for key, value in common.items():
            inv.set_variable("slurm_allocation", key, value)
        rank: dict[str, int] = result["rank"]
        nodes: list[str] = result["nodes"]
        memberships: list[tuple[str, list[str]]] = [
            ("proxy", [result["proxy"]]), ("prefill", result["prefill"]),
            ("decode", result["decode"]), ("slurm_spare", result["spare"])]
        for name in nodes:
            inv.add_host(name, group="slurm_allocation")
            inv.set_variable(name, "slurm_nodename", name)
            if name in rank:
                inv.set_variable(name, "disagg_node_rank", rank[name])
        for group, hosts in memberships:
            for name in hosts:
                inv.add_host(name, group=group)
        strict = self.get_option("strict")
        for name in nodes:
            hostvars = inv.get_host(name).get_vars()
            hostvars.update(common)
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name,
                                              strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name,
                                           strict=strict)

    def parse(self, inventory: object, loader: object, path: str, cache: bool = True) -> None:
        """Read the config, expand the allocation (or take it from the cache), populate."""
        super().parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        try:
            inputs = self._inputs()
        except ValueError as exc:
            raise AnsibleParserError(str(exc)) from exc
        # The result depends on the environment (SLURM_JOB_NODELIST, xP, yD), not only on the
        # file, so those inputs are part of the cache key.
        digest = hashlib.sha256(json.dumps(asdict(inputs), sort_keys=True).encode()).hexdigest()
        cache_key = f"{self.get_cache_key(path)}_{digest[:12]}"
        user_cache_setting = self.get_option("cache")
        attempt_to_read_cache = user_cache_setting and cache
        cache_needs_update = user_cache_setting and not cache
        result = None
        if attempt_to_read_cache:
            try:
                result = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
        if result is None:
            try:
                result = self._compute(inputs)
            except ValueError as exc:
                raise AnsibleParserError(str(exc)) from exc
        if cache_needs_update:
            self._cache[cache_key] = result
        self._populate(result, inputs)
