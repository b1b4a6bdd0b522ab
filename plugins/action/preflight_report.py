# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Write the preflight reports of every host on the controller, in one task (run_once).

Runs in the controller process (no module is sent to a host): for each host in ``hosts`` it reads
the ``_preflight_report`` fact set by the role and writes ``<dest>/<host>.json``, then
``<dest>/preflight.md`` with the findings of all hosts (and the KV path pairs the reports
carry under ``kv_path``). Hosts without a report (unreachable, or
failed before evaluation) appear in the table as such.
"""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.inferops.disagg.plugins.module_utils._plain import plain as _plain
from ansible_collections.inferops.disagg.plugins.module_utils._preflight import (
    markdown,
    render,
)


class ActionModule(ActionBase):
    """Write per-host JSON reports and the Markdown table."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "hosts", "title", "fact"))

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        dest = args.get("dest")
        if not dest:
            raise AnsibleActionFail("preflight_report: dest is required")
        hosts = list(args.get("hosts") or [])
        fact = args.get("fact", "_preflight_report")
        hostvars = task_vars.get("hostvars", {})
        os.makedirs(dest, exist_ok=True)
        findings_by_host: dict[str, list] = {}
        kv_path: list[dict] = []
        files = []
        for host in hosts:
            report = hostvars.get(host, {}).get(fact) if host in hostvars else None
            if report is None:
                missing = {"host": host, "check": "preflight.report",
                           "found": "no report (host unreachable or failed before evaluation)",
                           "expected": "a report", "fix": "see the play output for this host"}
                findings_by_host[host] = [missing]
                continue
            report = _plain(self._templar.template(report))
            findings_by_host[host] = report.get("findings", [])
            kv_path += report.get("kv_path") or []
            report["lines"] = [render(f) for f in findings_by_host[host]]
            path = os.path.join(dest, f"{host}.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(report, fh, indent=2, sort_keys=True)
                fh.write("\n")
            files.append(path)
        md_path = os.path.join(dest, "preflight.md")
        with open(md_path, "w", encoding="utf-8") as fh:
            fh.write(markdown(findings_by_host, args.get("title", "Preflight"), kv_path))
        files.append(md_path)
        lines = [render(f) for h in sorted(findings_by_host) for f in findings_by_host[h]]
        result.update(changed=False, files=files, lines=lines,
                      unfit=sorted(h for h, f in findings_by_host.items() if f),
                      msg=f"wrote {len(files)} files to {dest}")
        return result
