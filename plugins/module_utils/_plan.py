# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""The deploy plan: what each container of a deploy is, and what the deploy does to it.

``container_entry`` turns one container's spec (what ``roles/_common/tasks/container.yml`` hands
community.docker.docker_container) and the module's result (check mode or not, with its diff)
into one plan entry: the exact spec, the action (``create``, ``recreate``, ``start``,
``unchanged``) and the reason, plus the one-line report of the deploy summary.
``document`` gathers every host's entries, launch settings and failures into the plan
(``plan.json``; its shape is ``{"hosts": {HOST: {"containers": [...]}}}`` plus the start
order); ``markdown`` renders it (``plan.md``). Secrets never reach a plan: environment values of
names that look secret (``_secrets.is_secret``: SECRET_WORDS, plus the deployment's
``disagg_secret_env_names``) are replaced by ``***``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.inferops.disagg.plugins.module_utils._secrets import (
    REDACTED,
    SECRET_WORDS,
    redact_env,
)

__all__ = ["ACTIONS", "REDACTED", "SCHEMA", "SECRET_WORDS", "STEPS", "container_entry",
           "document", "markdown", "redact_env"]

SCHEMA = "inferops.disagg.plan/v1"
ACTIONS = ("create", "recreate", "start", "unchanged")

# docker_container's diff keys that describe state, not settings.
_STATE_KEYS = frozenset({"exists", "running", "paused", "restarting", "removing"})

# The deploy's start order: step number -> (components, what happens at that step).
STEPS: dict[int, tuple[tuple[str, ...], str]] = {
    1: (("etcd",), "etcd (disagg_mooncake_metadata: etcd), waited on until /health answers"),
    2: (("prefill", "decode"),
        "the prefill and decode workers, on all their hosts at once, each waited on until "
        "/health answers (the health gate)"),
    3: (("router",),
        "the router, once every worker is healthy; then /readiness, /workers lists every "
        "worker healthy, and one /generate through it (the smoke test)"),
}

# The spec fields of a plan entry, in the order a reader wants them.
SPEC_FIELDS = ("image", "argv", "env", "devices", "volumes", "network_mode", "ipc_mode",
               "shm_size", "ulimits", "capabilities", "groups", "security_opts",
               "restart_policy", "labels")


def _step(component: str) -> int:
    for number, (components, _text) in STEPS.items():
        if component in components:
            return number
    return len(STEPS) + 1


def _changed_keys(result: Mapping[str, Any]) -> list[str]:
    before = (result.get("diff") or {}).get("before") or {}
    if not isinstance(before, Mapping):
        return []
    return sorted(str(k) for k in before if k not in _STATE_KEYS)


def _action(before: Mapping[str, Any], result: Mapping[str, Any],
            check_mode: bool) -> tuple[str, str, str]:
    """(action, reason, the summary's phrase) for one docker_container result."""
    state = ((before.get("container") or {}).get("State") or {}) if before.get("exists") else {}
    status = str(state.get("Status", "missing"))
    done = "would be " if check_mode else ""
    if not result.get("changed"):
        return "unchanged", f"runs with the same settings ({status})", f"unchanged, {status}"
    if not before.get("exists"):
        return "create", "it does not exist", f"{done}created (it did not exist)"
    changed = _changed_keys(result)
    if changed:
        text = ", ".join(changed)
        return "recreate", f"changed: {text}", f"{done}recreated (changed: {text})"
    if not state.get("Running"):
        return ("start", f"it is {status}, exit code {state.get('ExitCode')}",
                f"{done}started again (it was {status}, exit code {state.get('ExitCode')})")
    return "recreate", "docker_container reports a change it does not name", f"{done}recreated"


def container_entry(spec: Mapping[str, Any], before: Mapping[str, Any] | None,
                    result: Mapping[str, Any] | None, check_mode: bool = False,
                    secret_env_names: Iterable[Any] | None = None) -> dict[str, Any]:
    """One plan entry for one container.

    ``spec``: ``name``, ``component`` (etcd, prefill, decode, router), ``what`` (a phrase such as
    "prefill worker") and the SPEC_FIELDS (``argv`` is the command). ``before``: what
    docker_container_info returned before the change; ``result``: what docker_container returned
    (in check mode, what it would do; ``check_mode`` words the report so). Returns the entry
    with ``action``, ``reason``, ``step`` and ``report`` (the deploy summary's "NAME: what
    happened" line); env values of secret names (SECRET_WORDS or ``secret_env_names``) redacted.
    """
    name = str(spec.get("name", ""))
    component = str(spec.get("component", ""))
    action, reason, phrase = _action(before or {}, result or {}, check_mode)
    entry: dict[str, Any] = {"name": name, "role": component, "what": str(spec.get("what", ""))}
    for key in SPEC_FIELDS:
        value = spec.get(key)
        if key == "env":
            value = redact_env(value if isinstance(value, Mapping) else {}, secret_env_names)
        elif key == "argv":
            value = [str(a) for a in (value or [])]
        entry[key] = value
    entry.update(action=action, reason=reason, step=_step(component),
                 report=f"{name}: {phrase}")
    return entry


def _order(hosts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    order = []
    for number, (_components, text) in sorted(STEPS.items()):
        containers = [f"{c['name']} on {host}" for host in sorted(hosts)
                      for c in hosts[host].get("containers", []) if c.get("step") == number]
        if containers:
            order.append({"step": number, "what": text, "containers": containers})
    return order


def document(containers: Mapping[str, Sequence[Mapping[str, Any]]],
             launch_settings: Mapping[str, Any] | None = None,
             failures: Mapping[str, str] | None = None, *, check_mode: bool = True,
             run_id: str = "", inventory: str = "") -> dict[str, Any]:
    """The plan of a deploy run.

    ``containers``: host -> its plan entries (``container_entry``), in the order they ran;
    ``launch_settings``: host -> the values its workers derived (roles/sglang_worker/tasks/
    derive.yml); ``failures``: host -> why the run stopped there. Hosts are sorted; every host
    appears, also with no container.
    """
    settings = launch_settings or {}
    hosts: dict[str, dict[str, Any]] = {}
    for host in sorted(set(containers) | set(settings) | set(failures or {})):
        entries = sorted((dict(c) for c in containers.get(host) or []),
                         key=lambda c: (c.get("step", 0), c.get("name", "")))
        hosts[host] = {"containers": entries}
        if settings.get(host):
            hosts[host]["launch_settings"] = settings[host]
    counts = {a: sum(1 for h in hosts.values() for c in h["containers"] if c["action"] == a)
              for a in ACTIONS}
    return {
        "schema": SCHEMA,
        "check_mode": bool(check_mode),
        "run_id": run_id,
        "inventory": inventory,
        "complete": not failures,
        "failures": dict(sorted((failures or {}).items())),
        "counts": counts,
        "start_order": _order(hosts),
        "hosts": hosts,
    }


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _spec_lines(entry: Mapping[str, Any]) -> list[str]:
    argv = " ".join(str(a) for a in entry.get("argv") or [])
    env = " ".join(f"{k}={v}" for k, v in sorted((entry.get("env") or {}).items()))
    lines = [f"- image: `{entry.get('image')}`", f"- argv: `{argv}`",
             f"- env: `{env}`" if env else "- env: (none)"]
    for key in ("devices", "volumes", "ulimits", "capabilities", "groups", "security_opts"):
        values = entry.get(key) or []
        lines.append(f"- {key}: " + (", ".join(f"`{v}`" for v in values) if values else "(none)"))
    lines.append(f"- network: `{entry.get('network_mode')}`, IPC: "
                 f"`{entry.get('ipc_mode') or 'default'}`, shm: `{entry.get('shm_size') or '-'}`, "
                 f"restart: `{entry.get('restart_policy')}`")
    return lines


def markdown(plan: Mapping[str, Any]) -> str:
    """``plan.md``: the start order, one table row per container, then each container's spec."""
    mode = "check mode: nothing was changed on any host" if plan.get("check_mode") \
        else "a deploy run: these are the changes it made"
    out = [f"# Deploy plan ({mode})", ""]
    if plan.get("run_id"):
        out += [f"Run `{plan['run_id']}`, inventory `{plan.get('inventory', '')}`.", ""]
    counts = plan.get("counts") or {}
    out += [", ".join(f"{counts.get(a, 0)} {a}" for a in ACTIONS) + ".", ""]
    for host, why in (plan.get("failures") or {}).items():
        out.append(f"**Stopped on {host}:** {_md(why)}")
    if plan.get("failures"):
        out += ["", "The plan below is what was known when the run stopped.", ""]
    out += ["## Start order", ""]
    for step in plan.get("start_order") or []:
        out.append(f"{step['step']}. {step['what']}: {', '.join(step['containers'])}")
    out += ["", "## Containers", "", "| host | step | container | action | reason | image |",
            "|---|---|---|---|---|---|"]
    hosts = plan.get("hosts") or {}
    for host, data in hosts.items():
        for c in data.get("containers") or []:
            out.append(f"| {host} | {c.get('step')} | {c.get('name')} | {c.get('action')} | "
                       f"{_md(c.get('reason'))} | `{c.get('image')}` |")
    for host, data in hosts.items():
        out += ["", f"## {host}"]
        settings = data.get("launch_settings")
        if settings and settings.get("line"):
            out += ["", f"Launch settings: {_md(settings['line'])}"]
        for c in data.get("containers") or []:
            out += ["", f"### {c.get('name')} ({c.get('what') or c.get('role')}): "
                        f"{c.get('action')}", ""] + _spec_lines(c)
    return "\n".join(out) + "\n"
