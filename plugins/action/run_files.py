# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Write files of the run record on the controller, in the controller process.

``collect_logs`` writes each container's log and docker inspect with it: one task per host,
with no module sent anywhere (``ansible.builtin.copy`` delegated to localhost ran a module
process per file, which made log collection the largest controller cost of a deploy;
docs/scale.md). A file whose content is already there is left as it is.
"""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def _check_name(name: object) -> str:
    """A plain file name inside dest (no directory part, not . or ..)."""
    text = str(name or "")
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
        raise AnsibleActionFail(
            f"run_files: file name {text!r} is not a plain file name; fix: give names without "
            "a directory part (dest is the directory)")
    return text


def write_file(path: str, content: str, mode: int) -> bool:
    """Write ``content`` to ``path`` atomically unless it already holds it; True if written."""
    data = content.encode("utf-8")
    try:
        with open(path, "rb") as fh:
            if fh.read() == data:
                return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".run_files-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


class ActionModule(ActionBase):
    """Write the given files into dest."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "files", "mode"))

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        args = self._task.args
        dest = str(args.get("dest") or "")
        if not dest:
            raise AnsibleActionFail("run_files: dest is required")
        files = args.get("files") or {}
        if not isinstance(files, dict):
            raise AnsibleActionFail("run_files: files must map file names to their content")
        try:
            mode = int(str(args.get("mode", "0644")), 8)
        except ValueError as exc:
            raise AnsibleActionFail(f"run_files: mode {args.get('mode')!r} is not octal") from exc
        os.makedirs(dest, exist_ok=True)
        written: list[str] = []
        unchanged: list[str] = []
        for name, content in files.items():
            path = os.path.join(dest, _check_name(name))
            text = content if isinstance(content, str) else str(content or "")
            (written if write_file(path, text, mode) else unchanged).append(path)
        result.update(changed=False, dest=dest, written=written, unchanged=unchanged,
                      msg=f"{len(written)} file(s) written, {len(unchanged)} unchanged in {dest}")
        return result
