"""pdctl's exit codes (stable: CI scripts branch on them) and how a run maps to one."""

from __future__ import annotations

OK = 0
ERROR = 1  # usage, a bad inventory path, a canceled run, anything not below
PREFLIGHT_FAILED = 2
DEPLOY_FAILED = 3
BENCH_FAILED = 4

# The exit code of each playbook command when its run fails.
FAILED_CODE: dict[str, int] = {
    "preflight": PREFLIGHT_FAILED,
    "deploy": DEPLOY_FAILED,
    "plan": DEPLOY_FAILED,
    "rollout": DEPLOY_FAILED,
    "scale": DEPLOY_FAILED,
    "bench": BENCH_FAILED,
    "down": ERROR,
    "logs": ERROR,
}

# The roles whose tasks a command's own playbook exists to run: a run of it that ran none of
# them on any host (``--tags`` or ``--limit`` selected none) did nothing and is not ok.
REQUIRED_ROLES: dict[str, frozenset[str]] = {
    "preflight": frozenset({"preflight"}),
    "deploy": frozenset({"etcd", "sglang_worker", "router"}),
    "plan": frozenset({"etcd", "sglang_worker", "router"}),
    "rollout": frozenset({"sglang_worker"}),
    "scale": frozenset({"sglang_worker", "router"}),
    "bench": frozenset({"benchmark"}),
    "down": frozenset({"teardown"}),
    "logs": frozenset({"collect_logs"}),
}

# A failure inside these roles is a preflight failure whichever playbook ran it (deploy.yml runs
# preflight first).
PREFLIGHT_ROLES = frozenset({"preflight", "inferops.disagg.preflight"})

DESCRIPTION = {
    OK: "ok",
    ERROR: "usage error or other failure",
    PREFLIGHT_FAILED: "preflight failed",
    DEPLOY_FAILED: "deploy failed",
    BENCH_FAILED: "benchmark failed",
}


def exit_code_for(command: str, status: str, failed_roles: set[str] | frozenset[str]) -> int:
    """Map a finished run to pdctl's exit code.

    ``status`` is ansible-runner's final status (``successful``, ``failed``, ``timeout``,
    ``canceled``, ``error``, or pdctl's ``nothing_ran``: no task of the command's roles ran);
    ``failed_roles`` are the roles of the tasks that failed. A failed, timed-out or empty run maps
    to the command's code, except that a failure inside the preflight role is always
    ``PREFLIGHT_FAILED``. A canceled or errored runner is ``ERROR``.
    """
    if status == "successful":
        return OK
    if status in ("failed", "timeout", "nothing_ran"):
        if failed_roles & PREFLIGHT_ROLES:
            return PREFLIGHT_FAILED
        return FAILED_CODE.get(command, ERROR)
    return ERROR
