# Copyright: (c) 2026, inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
# ruff: noqa: E402  (DOCUMENTATION/EXAMPLES/RETURN come before the imports, Ansible style)
"""Lookup plugin: the one place that decides where the collection's own files and its work
directories are (no role or playbook builds a path with role_path/../..)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: path
author: inferops.disagg team (!UNKNOWN)
version_added: 0.1.0
short_description: Absolute paths of the collection's own data and of its work directories
description:
  - Returns one absolute path per term, relative to a base directory.
  - C(collection) is this collection's root, wherever it is installed (an
    C(ansible-galaxy collection install) tree or a checkout), which holds C(models/),
    C(data/) and C(scripts/).
  - C(cwd) is the controller's current directory (the default home of C(runs/)).
  - C(cache) is the work directory, C($DISAGG_WORK_DIR) if set (as the image scripts read it),
    else the user's cache directory, C($XDG_CACHE_HOME/inferops-disagg) or
    C(~/.cache/inferops-disagg), for build contexts, image archives and other work files.
  - No file is created or read; the path need not exist.
options:
  _terms:
    description: Paths relative to O(base); an empty string gives the base itself.
    required: true
    type: list
    elements: str
  base:
    description: Which directory the terms are relative to.
    type: str
    choices: [collection, cwd, cache]
    default: collection
"""

EXAMPLES = r"""
- name: The collection's model profiles
  ansible.builtin.debug:
    msg: "{{ lookup('inferops.disagg.path', 'models') }}"

- name: The default work directory
  ansible.builtin.debug:
    msg: "{{ lookup('inferops.disagg.path', '', base='cache') }}"
"""

RETURN = r"""
_raw:
  description: One absolute path per term.
  type: list
  elements: str
"""

import os
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# plugins/lookup/path.py -> the collection root, two levels above plugins/.
COLLECTION_ROOT = Path(__file__).resolve().parents[2]


def base_dir(base: str, environ: dict[str, str] | None = None) -> Path:
    """The directory that ``base`` names (see DOCUMENTATION)."""
    env = os.environ if environ is None else environ
    if base == "collection":
        return COLLECTION_ROOT
    if base == "cwd":
        return Path(os.getcwd())
    if base == "cache":
        if env.get("DISAGG_WORK_DIR"):
            return Path(env["DISAGG_WORK_DIR"])
        xdg = env.get("XDG_CACHE_HOME", "")
        root = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".cache"
        return root / "inferops-disagg"
    raise AnsibleLookupError(f"inferops.disagg.path: unknown base {base!r} "
                             "(choose collection, cwd or cache)")


def resolve(term: str, base: str) -> str:
    """``term`` under ``base``; an absolute ``term`` is refused (it would escape the base)."""
    if os.path.isabs(term):
        raise AnsibleLookupError(f"inferops.disagg.path: {term!r} is absolute; give a path "
                                 f"relative to the {base} directory")
    return str(base_dir(base) / term) if term else str(base_dir(base))


class LookupModule(LookupBase):
    """``lookup('inferops.disagg.path', 'models')`` and friends."""

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None,
            **kwargs: Any) -> list[str]:
        """One absolute path per term."""
        self.set_options(var_options=variables, direct=kwargs)
        base = self.get_option("base")
        return [resolve(str(term), base) for term in terms]
