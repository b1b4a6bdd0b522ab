#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""Documentation of the validate_settings action plugin (plugins/action/validate_settings.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_settings
short_description: Check the inventory's hosts and variables on the controller before any host is touched
version_added: 0.1.0
description:
  - Runs in the controller process (an action plugin; no module is sent to a host and no SSH
    connection is opened), once (use C(run_once)). C(playbooks/validate.yml) runs it first.
  - For every host of the proxy, prefill and decode groups it templates the variables the
    inventory (or C(-e)) sets with a collection prefix (C(disagg_), C(sglang_worker_),
    C(router_), C(preflight_), C(benchmark_)) and checks them against the types and choices the
    roles' C(meta/argument_specs.yml) declare. The same bad value on several hosts is one line.
  - "It also checks: two hosts with one address (loopback addresses excepted: hosts of local
    processes are told apart by port); two services of one machine on one port (router,
    Prometheus, prefill, decode, bootstrap, etcd, and dist-init for multi-node profiles); ports
    outside 1-65535; C(disagg_xp)/C(disagg_yd) that are not positive integers; an unsupported
    C(disagg_transfer_backend); a C(disagg_etcd_host) that is not an inventory host; a
    C(disagg_name) that cannot be part of a container name; and flags in
    C(sglang_worker_extra_args) and the model profile's C(extra_args) that SGLang 0.5.2's
    launch_server does not accept (with a close match), beyond O(launcher_flags)."
  - Names with a collection prefix that no role uses are warnings, with "did you mean".
  - Returns the problems; the calling task decides to fail (C(disagg_ignore_assert_errors)
    prints them instead).
options:
  profile:
    description: The parsed model profile (its C(prefill)/C(decode) C(nnodes) and C(extra_args)).
    type: dict
    default: {}
  launcher_flags:
    description: Flags the launcher accepts beyond SGLang 0.5.2's (C(disagg_launcher_flags)).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - inferops.disagg._attributes
  - inferops.disagg._attributes.action
  - inferops.disagg._attributes.platform
  - inferops.disagg._attributes.controller
seealso:
  - plugin: inferops.disagg.model_profile_errors
    plugin_type: filter
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check every host's variables, addresses, ports, names and launch flags
  inferops.disagg.validate_settings:
    profile: "{{ _common_profile }}"
    launcher_flags: "{{ disagg_launcher_flags }}"
  register: __settings
  run_once: true

- name: Refuse bad settings
  ansible.builtin.fail:
    msg: "{{ __settings.errors | join('\n') }}"
  when: __settings.errors | length > 0
  run_once: true
"""

RETURN = r"""
changed:
  description: Always false.
  type: bool
  returned: always
errors:
  description: One line per problem, naming the host or variable, the bad value and the fix.
  type: list
  elements: str
  returned: always
  sample:
    - "disagg_decode_port: 70000 is not a port (an integer 1-65535) on decode-1. Fix: set disagg_decode_port to a free port number"
    - "hosts decode-1, decode-2 all have the address 192.0.2.21: two hosts would run services on one machine under two names. Fix: ..."
warnings:
  description: Variables with a collection prefix that no role uses (also shown as Ansible warnings).
  type: list
  elements: str
  returned: always
  sample: ["disagg_xpp is set in the inventory but no role of inferops.disagg uses it, so it has no effect; did you mean disagg_xp?"]
msg:
  description: How many problems and warnings, over how many hosts.
  type: str
  returned: always
  sample: 2 problem(s), 1 warning(s) in the settings of 4 hosts
"""
