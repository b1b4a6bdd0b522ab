#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""Documentation of the deploy_plan action plugin (plugins/action/deploy_plan.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_plan
short_description: Write the deploy plan (plan.json, plan.md) of every host on the controller
version_added: 0.1.0
description:
  - Runs in the controller process (an action plugin; no module is sent to a host), once for all
    hosts (use C(run_once)).
  - For each host in O(hosts) it reads the containers the deploy ran or, in check mode, would run
    (the host fact C(disagg_plan_containers), one entry per container from
    C(roles/_common/tasks/container.yml)), the launch settings its workers derived
    (C(disagg_launch_settings)) and why the run stopped on it (C(_disagg_failure)).
  - "Writes C(<dest>/plan.json): C({\"schema\", \"check_mode\", \"complete\", \"failures\", \"counts\",
    \"start_order\", \"hosts\": {HOST: {\"containers\": [{\"name\", \"role\", \"image\", \"argv\", \"env\",
    \"devices\", \"volumes\", \"network_mode\", \"ipc_mode\", \"ulimits\", \"capabilities\", \"action\",
    \"reason\", ...}], \"launch_settings\"}}}), and C(<dest>/plan.md), the same for people."
  - The action is C(create), C(recreate) (the reason names what changed), C(start) (it exists but
    is stopped) or C(unchanged). Environment values whose names contain TOKEN, SECRET, KEY,
    PASSWORD or CREDENTIAL (any case), or match C(disagg_secret_env_names), are written as C(***)
    (docs/secrets.md).
  - Never changes a host; it writes the files on the controller, also in check mode.
options:
  dest:
    description: Directory on the controller to write the plan to (created when missing).
    type: path
    required: true
  hosts:
    description: The hosts of the plan (usually C(ansible_play_hosts_all)).
    type: list
    elements: str
    default: []
  inventory:
    description: The inventory the plan is for, as shown in the plan.
    type: str
    default: ""
extends_documentation_fragment:
  - inferops.disagg._attributes
  - inferops.disagg._attributes.action
  - inferops.disagg._attributes.platform
  - inferops.disagg._attributes.controller
seealso:
  - module: inferops.disagg.container_wait
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the plan of every host of the play
  inferops.disagg.deploy_plan:
    dest: "{{ disagg_run_dir }}"
    hosts: "{{ ansible_play_hosts_all }}"
    inventory: "{{ ansible_inventory_sources | join(',') }}"
  register: __plan
  run_once: true

- name: Show what happens to each container
  ansible.builtin.debug:
    msg: "{{ __plan.lines }}"
  run_once: true
"""

RETURN = r"""
changed:
  description: Always false.
  type: bool
  returned: always
files:
  description: The files written, C(plan.json) then C(plan.md).
  type: list
  elements: str
  returned: always
  sample: ["runs/r1/plan.json", "runs/r1/plan.md"]
counts:
  description: How many containers get each action.
  type: dict
  returned: always
  sample: {"create": 3, "recreate": 1, "start": 0, "unchanged": 1}
lines:
  description: "One C(HOST: CONTAINER: what happens) line per container, hosts sorted."
  type: list
  elements: str
  returned: always
  sample: ["decode-1: pd-decode: recreated (changed: env)", "proxy-1: pd-router: unchanged, running"]
msg:
  description: The counts and where the plan was written.
  type: str
  returned: always
  sample: "plan: 3 create, 1 recreate, 0 start, 1 unchanged; wrote runs/r1/plan.json and plan.md"
"""
