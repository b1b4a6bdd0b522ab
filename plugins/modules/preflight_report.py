#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""Documentation of the preflight_report action plugin (plugins/action/preflight_report.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight_report
short_description: Write the preflight reports of every host on the controller
version_added: 0.1.0
description:
  - Runs in the controller process (an action plugin; no module is sent to a host), once for all
    hosts (use C(run_once)).
  - For each host in O(hosts) it reads the host's O(fact) (set by the preflight role) and writes
    C(<dest>/<host>.json) with the report and its finding lines; then C(<dest>/preflight.md), one
    Markdown table of the findings of every host (hosts without findings show as fit) followed by
    the KV path pairs the reports carry under C(kv_path).
  - A host without a report (unreachable, or failed before evaluation) appears in the table with
    a C(preflight.report) finding.
  - Never changes a host; it writes files on the controller, also in check mode.
options:
  dest:
    description: Directory on the controller to write the reports to (created when missing).
    type: path
    required: true
  hosts:
    description: The hosts to report on (usually C(ansible_play_hosts)).
    type: list
    elements: str
    default: []
  title:
    description: Title of C(preflight.md).
    type: str
    default: Preflight
  fact:
    description: Name of the host fact that holds each host's report.
    type: str
    default: _preflight_report
extends_documentation_fragment:
  - inferops.disagg._attributes
  - inferops.disagg._attributes.action
  - inferops.disagg._attributes.platform
  - inferops.disagg._attributes.controller
seealso:
  - module: inferops.disagg.amdgpu_facts
  - module: inferops.disagg.rdma_facts
  - module: inferops.disagg.host_tunables
  - plugin: inferops.disagg.preflight_markdown
    plugin_type: filter
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the preflight reports of the play's hosts
  inferops.disagg.preflight_report:
    dest: "{{ disagg_run_dir }}/preflight"
    hosts: "{{ ansible_play_hosts }}"
    title: Preflight (enforce)
  register: __preflight_report
  run_once: true

- name: Show every finding
  ansible.builtin.debug:
    msg: "{{ __preflight_report.lines }}"
  run_once: true
"""

RETURN = r"""
changed:
  description: Always false.
  type: bool
  returned: always
files:
  description: The files written, the per-host JSON reports then C(preflight.md).
  type: list
  elements: str
  returned: always
  sample: ["runs/r1/preflight/prefill-1.json", "runs/r1/preflight/preflight.md"]
lines:
  description: "One C(HOST: CHECK: found X, expected Y; fix: Z) line per finding of every host, hosts sorted."
  type: list
  elements: str
  returned: always
  sample:
    - >-
      decode-1: host.numa_balancing: found kernel.numa_balancing=1, expected
      kernel.numa_balancing=0; fix: sysctl -w kernel.numa_balancing=0 and persist it in
      /etc/sysctl.d/
unfit:
  description: The hosts with at least one finding.
  type: list
  elements: str
  returned: always
  sample: [decode-1]
msg:
  description: How many files were written where.
  type: str
  returned: always
  sample: wrote 3 files to runs/r1/preflight
"""
