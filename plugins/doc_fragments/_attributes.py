# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""PRIVATE doc fragment: the descriptions of the ``attributes:`` of this collection's modules.

A module extends ``inferops.disagg._attributes`` (check_mode, diff_mode, idempotent) and states
each attribute's ``support`` itself, or also extends a variable of this fragment that sets them:

- ``inferops.disagg._attributes.read_only``: the module never changes anything.
- ``inferops.disagg._attributes.facts``: the module returns ``ansible_facts`` (``facts: full``).
- ``inferops.disagg._attributes.platform``: the ``platform`` attribute; the module gives
  ``platforms``.
- ``inferops.disagg._attributes.action``: an action plugin that runs on the controller.
- ``inferops.disagg._attributes.controller``: an action plugin that runs once on the controller,
  never changes a host, and writes what it writes (reports) also in check mode; with ``action``
  and ``platform`` it sets every attribute.
"""

from __future__ import annotations


class ModuleDocFragment:
    """Attribute descriptions and common support levels."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a changed status prediction without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when run in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes that the system it controls or queries has not changed in a relevant way in between.
"""

    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""

    FACTS = r"""
options: {}
attributes:
  facts:
    description: Returns an C(ansible_facts) dictionary that updates the host's facts.
    support: full
"""

    PLATFORM = r"""
options: {}
attributes:
  platform:
    description: Target operating systems or families it can run against.
    support: N/A
"""

    ACTION = r"""
options: {}
attributes:
  action:
    description: Runs as an action plugin, in the controller process.
    support: full
  async:
    description: Supports being run with C(async).
    support: none
"""

    CONTROLLER = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - Never changes a host; the files it writes on the controller (reports), it writes also in
        check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The same inputs give the same files and result; RV(changed) is always false.
  platform:
    platforms: posix
    details:
      - Runs on the controller.
"""
