"""The tags a playbook offers to ``--tags``, as Ansible itself lists them.

``ansible-playbook --list-tags`` resolves imports (``import_playbook``, ``import_role``,
``import_tasks``, play ``roles:``) the way a run does; tags inside a dynamically included role
(``include_role`` without ``apply``) are not listed because ``--tags`` cannot select them
either: the include task is skipped first. So a tag missing from that list selects nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from pdctl.runner import runner_envvars

# Tags Ansible gives a meaning to whatever the playbook says.
SPECIAL_TAGS = ("all", "always", "never", "tagged", "untagged")
_TAG_LIST = re.compile(r"\bTAGS: \[([^\]]*)\]")


class TagsError(Exception):
    """The playbook's tags could not be listed (the run itself then says why)."""


def playbook_tags(playbook: Path, root: Path, timeout: float = 120.0) -> list[str]:
    """Every tag ``ansible-playbook --list-tags`` shows for ``playbook``, sorted.

    Listed against an inventory of just ``localhost``: the listing does not depend on hosts,
    and a Slurm or unreachable inventory must not make it fail.
    """
    env = dict(os.environ, **runner_envvars(root))
    try:
        proc = subprocess.run(["ansible-playbook", "--list-tags", "-i", "localhost,",
                               str(playbook)], capture_output=True, text=True, env=env,
                              cwd=str(root), timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise TagsError(str(exc)) from exc
    if proc.returncode != 0:
        raise TagsError(proc.stderr.strip() or f"ansible-playbook exited {proc.returncode}")
    tags: set[str] = set()
    for match in _TAG_LIST.finditer(proc.stdout):
        tags.update(t.strip() for t in match.group(1).split(",") if t.strip())
    return sorted(tags)


def unknown_tags(playbook: Path, requested: str, root: Path) -> tuple[list[str], list[str]]:
    """``(unknown, known)``: the tags of ``requested`` (comma-separated, as ``--tags`` takes
    them) that ``playbook`` does not have, and the ones it has (special tags included)."""
    known = sorted(set(playbook_tags(playbook, root)) | set(SPECIAL_TAGS))
    wanted = [t.strip() for t in requested.split(",") if t.strip()]
    return [t for t in wanted if t not in known], known
