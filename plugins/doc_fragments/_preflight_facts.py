# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E501  (YAML documentation lines)
"""PRIVATE doc fragment shared by the preflight fact modules."""

from __future__ import annotations


class ModuleDocFragment:
    """The ``root`` option of amdgpu_facts, rdma_facts and host_tunables (their attributes come
    from ``inferops.disagg._attributes``)."""

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
"""
