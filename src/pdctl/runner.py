"""Run one of the collection's playbooks through ``ansible_runner.run`` and summarise it.

The run directory (``runs/<run_id>/`` by default) is the runner's ``private_data_dir``: the
runner keeps its artifacts (``artifacts/<command>/stdout``, ``job_events/``, ``rc``, ``status``)
there, the playbooks get it as ``disagg_run_dir`` (collected logs land under it), and pdctl adds
``pdctl.log`` (every progress line) and ``summary.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from pdctl import exitcodes
from pdctl.events import Event, Recorder
from pdctl.progress import Progress
from pdctl.summary import build_summary

# Each playbook command and the collection playbook it runs (plan: deploy.yml --check --diff).
PLAYBOOKS: dict[str, str] = {
    "preflight": "playbooks/preflight.yml",
    "deploy": "playbooks/deploy.yml",
    "plan": "playbooks/deploy.yml",
    "rollout": "playbooks/rolling_update.yml",
    "scale": "playbooks/scale.yml",
    "bench": "playbooks/benchmark.yml",
    "down": "playbooks/teardown.yml",
    "logs": "playbooks/collect_logs.yml",
}


def collection_root() -> Path:
    """The ``inferops.disagg`` collection whose playbooks pdctl runs.

    ``PDCTL_COLLECTION_ROOT`` if set; else the checkout this package was installed from in
    editable mode (a parent with ``galaxy.yml`` and ``playbooks/``); else the collection as
    Ansible finds it (``ansible-galaxy collection list``: an ``ansible-galaxy collection
    install``, next to a non-editable ``pip install``); else the current directory.
    """
    env = os.environ.get("PDCTL_COLLECTION_ROOT")
    if env:
        return Path(env).resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / "galaxy.yml").is_file() and (parent / "playbooks").is_dir():
            return parent
    return installed_collection() or Path.cwd()


def installed_collection() -> Path | None:
    """Where Ansible's configured collection paths hold ``inferops.disagg``, if anywhere."""
    ensure_ansible_on_path()
    try:
        proc = subprocess.run(["ansible-galaxy", "collection", "list", "inferops.disagg",
                               "--format", "json"], capture_output=True, text=True,
                              timeout=60, check=False)
        found = json.loads(proc.stdout or "{}")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    for base in found if isinstance(found, dict) else {}:
        path = Path(base) / "inferops" / "disagg"
        if (path / "playbooks").is_dir():
            return path
    return None


def new_run_id(command: str, now: datetime | None = None) -> str:
    """``20261126T052300Z-deploy-1a2b``: sortable, unique enough, names the command."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{command}-{secrets.token_hex(2)}"


class RunDirTaken(Exception):
    """The run directory already holds a run (or anything else): pdctl never writes into it."""


# The file whose exclusive creation claims a run directory (two pdctl runs never share one).
CLAIM_FILE = "pdctl.log"


def claim_run_dir(run_dir: Path, *, suffix_if_taken: bool = False) -> Path:
    """Make ``run_dir`` this run's own directory and return it (absolute).

    The directory must not exist or be empty; it is claimed by creating ``pdctl.log`` in it
    exclusively, so two runs started at the same moment with the same id cannot both take it.
    A taken directory raises :class:`RunDirTaken`, or with ``suffix_if_taken`` (a run id pdctl
    made up) the next free ``<run_dir>-2``, ``-3``, … is used.
    """
    base = run_dir.resolve()
    for attempt in range(1, 1000):
        candidate = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if not any(p.name != CLAIM_FILE for p in candidate.iterdir()):
                with (candidate / CLAIM_FILE).open("x", encoding="utf-8"):
                    return candidate
        except FileExistsError:
            pass
        except OSError as exc:
            raise RunDirTaken(f"cannot create the run directory {candidate}: "
                              f"{exc.strerror or exc}") from exc
        if not suffix_if_taken:
            held = sorted(p.name for p in candidate.iterdir())[:5]
            raise RunDirTaken(
                f"run directory {candidate} already holds a run ({', '.join(held)}); pdctl never "
                "writes into a used run directory: choose another --run-id or --run-dir")
    raise RunDirTaken(f"no free run directory next to {base}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass
class RunRequest:
    """One playbook run as pdctl asks for it."""

    command: str
    playbook: Path
    inventory: str
    run_dir: Path
    run_id: str
    extravars: dict[str, Any] = field(default_factory=dict)
    envvars: dict[str, str] = field(default_factory=dict)
    limit: str | None = None
    tags: str | None = None
    skip_tags: str | None = None
    verbosity: int = 0
    timeout: int | None = None
    project_dir: Path | None = None
    check: bool = False
    # The roles whose tasks make the run count as done (the command's own playbook): a run that
    # ran none of them (``--tags``/``--limit`` selected nothing of them) is not ok.
    required_roles: frozenset[str] = frozenset()
    # Whether the run id was made up by pdctl (then a taken directory gets a suffix; a run id or
    # run dir the user named is refused instead).
    generated_id: bool = False


@dataclass
class RunResult:
    """What a run produced: the summary document and pdctl's exit code."""

    summary: dict[str, Any]
    exit_code: int


def ensure_ansible_on_path() -> None:
    """Put this interpreter's ``bin`` first on ``PATH``: ansible-runner looks ``ansible-playbook``
    up there, and a venv's ``pdctl`` must use the venv's Ansible even when not activated."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir, path]) if path else bindir


def runner_envvars(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment added for the Ansible commands the runner starts.

    The collection's ``ansible.cfg`` unless the caller set ``ANSIBLE_CONFIG``, no colours, and a
    broken inventory made fatal (Ansible only warns by default and then runs against nothing).
    Also makes sure the runner finds this environment's Ansible (:func:`ensure_ansible_on_path`).
    """
    ensure_ansible_on_path()
    env = {
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    cfg = root / "ansible.cfg"
    if "ANSIBLE_CONFIG" not in os.environ and cfg.is_file():
        env["ANSIBLE_CONFIG"] = str(cfg)
    env.update(extra or {})
    return env


class _Cancel:
    """SIGINT/SIGTERM -> ask the runner to cancel (it stops ansible-playbook and cleans up)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested:  # second Ctrl-C: give up waiting
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _Cancel:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (tests): no signal handling
                pass
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __call__(self) -> bool:
        return self.requested


def run_playbook(request: RunRequest, stream: TextIO, *, quiet: bool = False,
                 tty: bool | None = None,
                 endpoints: Callable[[Recorder], dict[str, Any]] | None = None) -> RunResult:
    """Run ``request.playbook`` with ``ansible_runner.run`` showing live progress on ``stream``.

    Returns the summary (also written to ``<run_dir>/summary.json``) and the exit code.
    """
    import ansible_runner  # deferred: importing it costs ~0.3 s that --help should not pay

    root = request.project_dir or collection_root()
    run_dir = request.run_dir.resolve()
    if not (run_dir / CLAIM_FILE).is_file():  # pdctl's cli claims it first (claim_run_dir)
        run_dir = claim_run_dir(run_dir, suffix_if_taken=request.generated_id)
    if request.generated_id:
        request.run_id = run_dir.name
    recorder = Recorder()
    progress = Progress(recorder, stream, tty=tty, log_path=run_dir / "pdctl.log", quiet=quiet)

    def on_event(event: Event) -> bool:
        recorder.feed(event)
        progress.event(event)
        return True

    def on_status(data: dict[str, Any], runner_config: object = None) -> None:
        status = str(data.get("status"))
        if status not in ("starting", "running", "successful"):
            progress.line(f"runner: {status}")

    # The playbooks write under <disagg_runs_dir>/<disagg_run_id>/: that is this run dir.
    extravars = {"disagg_run_dir": str(run_dir), "disagg_runs_dir": str(run_dir.parent),
                 "disagg_run_id": run_dir.name, **request.extravars}
    progress.line(f"pdctl {request.command}: {request.playbook} -i {request.inventory} "
                  f"(run {request.run_id}, {run_dir})")
    started = time.time()
    progress.start()
    error: str | None = None
    rc: int | None = None
    status = "error"
    try:
        with _Cancel() as cancel:
            runner = ansible_runner.run(
                private_data_dir=str(run_dir),
                project_dir=str(root),
                playbook=str(request.playbook),
                inventory=request.inventory,
                ident=request.command,
                extravars=extravars,
                envvars=runner_envvars(root, request.envvars),
                limit=request.limit,
                tags=request.tags,
                skip_tags=request.skip_tags,
                verbosity=request.verbosity or None,
                timeout=request.timeout,
                quiet=True,
                event_handler=on_event,
                status_handler=on_status,
                cancel_callback=cancel,
                **({"cmdline": "--check --diff"} if request.check else {}),
            )
        status, rc = str(runner.status), runner.rc
        if cancel.requested and status != "successful":
            # a terminal's Ctrl-C also reaches ansible-playbook, which then "fails" on its own
            status = "canceled"
        if status == "canceled":
            error = "canceled (interrupted)" + _where(recorder)
        elif status == "timeout":
            error = f"timed out after {request.timeout}s" + _where(recorder)
    except KeyboardInterrupt:
        status, error = "canceled", "interrupted twice; ansible-playbook may still be running"
    except Exception as exc:  # the runner itself failed (bad run dir, missing binary, ...)
        status, error = "error", f"ansible-runner failed: {type(exc).__name__}: {exc}"
    finally:
        progress.stop()
    finished = time.time()
    if status == "successful" and request.required_roles \
            and not recorder.roles_ran & request.required_roles:
        status = "nothing_ran"
        error = nothing_ran_message(request)
        progress.line(f"pdctl: {error}")
    code = exitcodes.exit_code_for(request.command, status, recorder.failed_roles())
    if status == "failed" and not recorder.failures and not recorder.errors:
        error = error or _stdout_tail(run_dir / "artifacts" / request.command / "stdout")
    summary = build_summary(
        recorder, command=request.command, status=status, rc=rc, exit_code=code,
        run_id=request.run_id, run_dir=str(run_dir), inventory=request.inventory,
        playbook=str(request.playbook), started=_iso(started), finished=_iso(finished),
        duration_s=finished - started, endpoints=endpoints(recorder) if endpoints else None,
        error=error)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return RunResult(summary, code)


def nothing_ran_message(request: RunRequest) -> str:
    """Why a run that Ansible calls successful is not ok: it ran none of the command's tasks."""
    selected = [f"{flag} {value}" for flag, value in (("--tags", request.tags),
                                                      ("--skip-tags", request.skip_tags),
                                                      ("--limit", request.limit)) if value]
    why = f" ({', '.join(selected)} selected none of them)" if selected else ""
    roles = ", ".join(sorted(request.required_roles))
    return (f"{request.command}: no task of {roles} ran on any host{why}; nothing was done, "
            "so the run is not ok")


def _where(recorder: Recorder) -> str:
    """`` while running 'task' on host1, host2`` for a run stopped mid-task."""
    if not recorder.current_task:
        return ""
    hosts = sorted(recorder.running)
    where = f" on {', '.join(hosts)}" if hosts else ""
    return f" while running {recorder.current_task!r}{where}"


def _stdout_tail(path: Path, lines: int = 15) -> str | None:
    """The end of the runner's captured stdout, for failures Ansible reported outside events."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    kept = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(kept[-lines:]) or None
