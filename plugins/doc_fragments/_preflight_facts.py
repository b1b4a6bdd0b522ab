# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""PRIVATE doc fragment shared by the preflight fact modules."""

from __future__ import annotations


class ModuleDocFragment:
    """Options and attributes of amdgpu_facts, rdma_facts and host_tunables."""

    DOCUMENTATION = r"""
options:
  root:
    description:
      - Directory that stands for C(/) when reading C(/sys), C(/proc), C(/dev), C(/etc) and
        C(/opt/rocm).
      - Point it at a recorded tree to replay a host; with a root other than C(/), commands are
        looked up only under the root (C(ROOT/opt/rocm/bin), C(ROOT/usr/bin), C(ROOT/usr/local/bin))
        unless their path is given explicitly.
    type: path
    default: /
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
"""
