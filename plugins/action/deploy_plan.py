# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Write the deploy plan on the controller, in one task (run_once).

Runs in the controller process (no module is sent to a host): it reads, for every host in
``hosts``, the containers the deploy ran or would run (``disagg_plan_containers``, appended by
``roles/_common/tasks/container.yml``), the launch settings its workers derived
(``disagg_launch_settings``) and why the run stopped there (``_disagg_failure``), and writes
``<dest>/plan.json`` and ``<dest>/plan.md`` (module_utils/_plan.py).
"""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.inferops.disagg.plugins.module_utils import _derive, _plan
from ansible_collections.inferops.disagg.plugins.module_utils._plain import plain as _plain


class ActionModule(ActionBase):
    """Write plan.json and plan.md."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "hosts", "inventory"))

    def _host_facts(self, hostvars: dict, host: str) -> tuple[list, dict | None, str]:
        facts = hostvars.get(host, {}) if host in hostvars else {}
        containers = _plain(self._templar.template(facts.get("disagg_plan_containers") or []))
        settings = facts.get("disagg_launch_settings")
        if settings is not None:
            settings = _plain(self._templar.template(settings))
            if isinstance(settings, dict):
                settings["line"] = _derive.summary_line(settings)
        failure = ""
        if facts.get("_disagg_failed"):
            failure = str(self._templar.template(facts.get("_disagg_failure") or "failed"))
        return containers if isinstance(containers, list) else [], settings, failure

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        dest = args.get("dest")
        if not dest:
            raise AnsibleActionFail("deploy_plan: dest is required")
        hostvars = task_vars.get("hostvars", {})
        containers: dict[str, list] = {}
        settings: dict[str, dict] = {}
        failures: dict[str, str] = {}
        for host in list(args.get("hosts") or []):
            entries, derived, failure = self._host_facts(hostvars, host)
            containers[host] = entries
            if derived:
                settings[host] = derived
            if failure:
                failures[host] = failure
        plan = _plan.document(containers, settings, failures,
                              check_mode=bool(task_vars.get("ansible_check_mode")),
                              run_id=str(task_vars.get("disagg_run_id", "")),
                              inventory=str(args.get("inventory") or ""))
        os.makedirs(dest, exist_ok=True)
        json_path = os.path.join(dest, "plan.json")
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(plan, fh, indent=2)
            fh.write("\n")
        md_path = os.path.join(dest, "plan.md")
        with open(md_path, "w", encoding="utf-8") as fh:
            fh.write(_plan.markdown(plan))
        counts = plan["counts"]
        result.update(changed=False, files=[json_path, md_path], counts=counts,
                      lines=[f"{h}: {c['report']}" for h, d in plan["hosts"].items()
                             for c in d["containers"]],
                      msg=f"plan: {', '.join(f'{n} {a}' for a, n in counts.items())}; "
                          f"wrote {json_path} and plan.md")
        return result
