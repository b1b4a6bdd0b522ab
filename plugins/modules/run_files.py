#!/usr/bin/python
# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""Documentation of the run_files action plugin (plugins/action/run_files.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: run_files
short_description: Write files of the run record on the controller
version_added: 0.1.0
description:
  - Runs in the controller process (an action plugin; no module is sent to any host and none is
    started on the controller), so writing a host's files costs one task, not one module run per
    file.
  - Writes each entry of O(files) into O(dest) (created when missing), atomically; a file that
    already holds the same content is left as it is.
  - The role C(inferops.disagg.collect_logs) writes every container's log and docker inspect with
    it.
  - Never changes a host; it writes the files on the controller, also in check mode.
options:
  dest:
    description: Directory on the controller to write into.
    type: path
    required: true
  files:
    description: File name (a plain name in O(dest), no directory part) to its content.
    type: dict
    default: {}
  mode:
    description: Permissions of the files written.
    type: str
    default: "0644"
extends_documentation_fragment:
  - inferops.disagg._attributes
  - inferops.disagg._attributes.action
  - inferops.disagg._attributes.platform
  - inferops.disagg._attributes.controller
author:
  - inferops.disagg team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write a host's container logs into the run directory
  inferops.disagg.run_files:
    dest: "{{ disagg_run_dir }}/{{ inventory_hostname }}"
    files:
      pd-decode.log: "{{ __logs.logs }}"
  delegate_to: localhost
"""

RETURN = r"""
changed:
  description: Always false (the run record is not a change to any host).
  type: bool
  returned: always
dest:
  description: The directory written into.
  type: str
  returned: always
written:
  description: The files written.
  type: list
  elements: str
  returned: always
unchanged:
  description: The files that already held the same content.
  type: list
  elements: str
  returned: always
"""
