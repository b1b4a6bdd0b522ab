# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE scaffolding of the preflight fact modules amdgpu_facts, rdma_facts and host_tunables
(not a public API): their shared ``main()`` and how they find a command on the host or under a
recorded host tree (option ``root``, see the ``_preflight_facts`` doc fragment)."""

from __future__ import annotations

import os
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError, rooted

ROOT_OPTION = {"root": {"type": "path", "default": "/"}}
# Where a command is looked up under a root other than "/" (after the caller's own directories).
ROOTED_BIN_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")


def find_tool(module: AnsibleModule, name: str, explicit: str | None, root: str,
              opt_dirs: tuple[str, ...] = ()) -> str | None:
    """Path of command ``name``, or None.

    An ``explicit`` path counts when it is executable. With ``root`` ``/`` the command is looked
    up on ``PATH`` and in ``opt_dirs``; under any other root only in ``root``/``opt_dirs`` and
    ``root``/{usr/local/bin, usr/bin, bin}, so a recorded tree never runs the host's tools.
    """
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if root == "/":
        return module.get_bin_path(name, opt_dirs=list(opt_dirs))
    for directory in (*opt_dirs, *ROOTED_BIN_DIRS):
        candidate = rooted(root, os.path.join(directory, name))
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_facts_module(argument_spec: dict, fact_key: str, check: str,
                     gather: Callable[[AnsibleModule], dict]) -> None:
    """The ``main()`` of a fact module: options ``root`` + ``argument_spec``, check mode
    supported, ``gather(module)`` returned under ``ansible_facts[fact_key]``, never changed.

    A ``root`` that is not a directory, or a :class:`ProbeError` from ``gather``, fails the
    module with a message naming ``check`` (e.g. ``gpu.facts``) and the fix.
    """
    module = AnsibleModule(argument_spec={**ROOT_OPTION, **argument_spec},
                           supports_check_mode=True)
    root = module.params["root"]
    if not os.path.isdir(root):
        module.fail_json(msg=f"root {root}: not a directory (check {check}); "
                             "fix: point root at / or at a recorded host tree")
    try:
        facts = gather(module)
    except ProbeError as exc:
        module.fail_json(msg=str(exc), check=exc.check, source=exc.source, fix=exc.fix)
    module.exit_json(changed=False, ansible_facts={fact_key: facts})
