"""``pdctl``: the command line.

    pdctl preflight|deploy|plan|bench|logs|down -i INVENTORY [--model M] [--xp N --yd N]
          [-e k=v ...] [--json] [--run-dir DIR] [--limit ...] [--tags ...] [--timeout S]
    pdctl status -i INVENTORY [--json]

``plan`` runs deploy.yml with ``--check --diff``: nothing changes on any host; it prints the plan
(every container's exact spec, create/recreate/unchanged and why, the start order), which the
run also writes as ``plan.md`` and ``plan.json`` in its run directory. With ``--json`` the
document is plan.json plus ``run`` (the run summary).

Exit codes: 0 ok, 1 usage or other failure, 2 preflight failed, 3 deploy failed, 4 benchmark
failed. With ``--json`` the only thing on stdout is one JSON document (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn, TextIO

import yaml

from pdctl import __version__, exitcodes
from pdctl.runner import (
    PLAYBOOKS,
    RunDirTaken,
    RunRequest,
    claim_run_dir,
    collection_root,
    new_run_id,
    run_playbook,
)
from pdctl.summary import render_summary
from pdctl.tags import TagsError, unknown_tags

# Extra variables the shortcut options set (the playbooks' collection-wide names).
MODEL_VAR = "disagg_model_profile"
XP_VAR = "disagg_xp"
REMOVE_VAR = "disagg_remove_hosts"
YD_VAR = "disagg_yd"


class UsageError(Exception):
    """A bad command line: exit code 1, the message names what to fix."""


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; pdctl's contract says 1 (2 means preflight failed)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def parse_extra_vars(items: list[str]) -> dict[str, Any]:
    """``-e`` values as Ansible takes them: ``k=v [k2=v2]``, ``@file.yml``, or YAML/JSON."""
    out: dict[str, Any] = {}
    for item in items:
        text = item.strip()
        if text.startswith("@"):
            path = Path(text[1:])
            try:
                data = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise UsageError(f"-e {item}: cannot read {path}: {exc}") from exc
            if not isinstance(data, dict):
                raise UsageError(f"-e {item}: {path} does not hold a mapping")
            out.update(data)
        elif text.startswith("{"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise UsageError(f"-e {item!r}: not valid YAML/JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise UsageError(f"-e {item!r}: not a mapping")
            out.update(data)
        else:
            for pair in shlex.split(text):
                key, sep, value = pair.partition("=")
                if not sep or not key.isidentifier():
                    raise UsageError(f"-e {pair!r}: expected key=value, @file or a JSON object")
                out[key] = value
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not value > 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def _url(text: str) -> str:
    """``--router``: an ``http(s)://host[:port]`` URL (a path is allowed, a query is not)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL; expected e.g. http://10.0.0.1:30000")
    if port == 0 or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected http(s)://host[:port] with a port in 1-65535 and no query")
    return text.rstrip("/")


def _common(parser: argparse.ArgumentParser, *, playbook: bool) -> None:
    parser.add_argument("-i", "--inventory", required=True,
                        help="inventory path (file or directory, e.g. inventories/rehearsal "
                             "or a *.slurm.yml)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout (progress goes to stderr)")
    if not playbook:
        return
    parser.add_argument("--model", help=f"model profile name (sets {MODEL_VAR})")
    parser.add_argument("--xp", type=int, metavar="N",
                        help=f"prefill node count (sets {XP_VAR} and xP for the slurm plugin)")
    parser.add_argument("--yd", type=int, metavar="N",
                        help=f"decode node count (sets {YD_VAR} and yD for the slurm plugin)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                        help="extra variables: key=value, @file.yml or a JSON object (repeatable)")
    parser.add_argument("--run-dir", type=Path,
                        help="artifacts directory (default: $PDCTL_RUNS_DIR or ./runs, "
                             "then /<run_id>)")
    parser.add_argument("--run-id", help="run identifier (default: <UTC time>-<command>-<hex>)")
    parser.add_argument("--limit", help="limit to a host pattern (ansible --limit)")
    parser.add_argument("--tags", help="only tasks with these tags")
    parser.add_argument("--skip-tags", help="skip tasks with these tags")
    parser.add_argument("--timeout", type=_positive_int, metavar="S",
                        help="cancel the run after S seconds (exit 3/4/... with status timeout)")
    parser.add_argument("--playbook", type=Path,
                        help="run this playbook instead of the command's own (same reporting)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="ansible verbosity (-v ... -vvvv); raw output in the run dir")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand."""
    parser = _Parser(prog="pdctl", description="Preflight, deploy, benchmark, inspect and tear "
                     "down a prefill/decode-disaggregated SGLang service (ansible-runner over the "
                     "inferops.disagg playbooks).",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="exit codes: 0 ok, 1 usage/other, 2 preflight failed, "
                            "3 deploy (or rollout) failed, 4 bench failed")
    parser.add_argument("--version", action="version", version=f"pdctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    helps = {
        "preflight": "check every node is fit (playbooks/preflight.yml)",
        "deploy": "deploy the prefill/decode workers and the router (playbooks/deploy.yml)",
        "plan": "show what deploy would run and change on each host, touching nothing "
                "(playbooks/deploy.yml --check --diff; writes plan.md and plan.json)",
        "rollout": "apply a changed worker spec to the live service one worker at a time, "
                   "each out of the router meanwhile (playbooks/rolling_update.yml)",
        "scale": "start the workers of hosts added to the inventory and register them with the "
                 "live router; --remove drains and stops named hosts first (playbooks/scale.yml)",
        "bench": "benchmark the deployed service (playbooks/benchmark.yml)",
        "logs": "collect every container's log into the run dir",
        "down": "tear the deployment down (playbooks/teardown.yml)",
    }
    for name, text in helps.items():
        _common(sub.add_parser(name, help=text, description=text), playbook=True)
    sub.choices["scale"].add_argument(
        "--remove", metavar="HOST[,HOST...]",
        help="scale in: drain, deregister and stop these prefill/decode hosts "
             "(disagg_remove_hosts); keep them in the inventory until this has run")
    status = sub.add_parser("status", help="read the live cluster: router workers, health, "
                                           "load, KV transfer counters (HTTP, no Ansible)")
    _common(status, playbook=False)
    status.add_argument("--router", type=_url,
                        help="router URL, http(s)://host:port (default: from the inventory)")
    status.add_argument("--http-timeout", type=_positive_float, default=5.0, metavar="S",
                        help="per-request timeout (default 5)")
    return parser


def _check_inventory(value: str) -> str:
    """An existing path (made absolute: the runner runs elsewhere) or an ``a,b,`` host list."""
    if "," in value and not Path(value).exists():
        return value
    path = Path(value)
    if not path.exists():
        raise UsageError(f"inventory {value!r} does not exist")
    return str(path.resolve())


def _run_dir(args: argparse.Namespace, run_id: str) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    base = Path(os.environ.get("PDCTL_RUNS_DIR", "runs"))
    return base / run_id


def _request(args: argparse.Namespace) -> RunRequest:
    inventory = _check_inventory(args.inventory)
    extravars = parse_extra_vars(args.extra_vars)
    envvars: dict[str, str] = {}
    if args.model:
        extravars[MODEL_VAR] = args.model
    remove = getattr(args, "remove", None)
    if remove is not None:
        hosts = [h.strip() for h in remove.split(",") if h.strip()]
        if not hosts:
            raise UsageError("--remove: name at least one host, e.g. --remove decode-2")
        extravars[REMOVE_VAR] = hosts
    for flag, var, env in ((args.xp, XP_VAR, "xP"), (args.yd, YD_VAR, "yD")):
        if flag is not None:
            if flag < 1:
                raise UsageError(f"--{env.lower()} must be >= 1, got {flag}")
            extravars[var] = flag
            envvars[env] = str(flag)
    root = collection_root()
    if args.run_id is not None and (not args.run_id or "/" in args.run_id
                                    or args.run_id in (".", "..")):
        raise UsageError(f"--run-id {args.run_id!r}: a run id is one directory name")
    run_dir = _run_dir(args, args.run_id or new_run_id(args.command))
    playbook = args.playbook or root / PLAYBOOKS[args.command]
    if not Path(playbook).is_file():
        raise UsageError(f"playbook {playbook} not found (collection root {root}; "
                         "set PDCTL_COLLECTION_ROOT or --playbook)")
    if args.tags:
        _check_tags(Path(playbook), args.tags, root)
    # The run dir's name is the run id (run_dir above), so the playbooks'
    # <disagg_runs_dir>/<disagg_run_id> is the run dir; --run-id only names the default one.
    return RunRequest(command=args.command, playbook=Path(playbook).resolve(),
                      inventory=inventory, run_dir=run_dir, run_id=run_dir.name,
                      extravars=extravars, envvars=envvars, limit=args.limit, tags=args.tags,
                      skip_tags=args.skip_tags, verbosity=args.verbose, timeout=args.timeout,
                      project_dir=root, check=args.command == "plan",
                      required_roles=frozenset() if args.playbook else
                      exitcodes.REQUIRED_ROLES.get(args.command, frozenset()),
                      generated_id=not (args.run_id or args.run_dir))


def _check_tags(playbook: Path, tags: str, root: Path) -> None:
    """Refuse ``--tags`` naming a tag the playbook does not have (it would run nothing)."""
    try:
        unknown, known = unknown_tags(playbook, tags, root)
    except TagsError:
        return  # the playbook does not even list: the run itself reports why
    if unknown:
        raise UsageError(
            f"--tags: {', '.join(repr(t) for t in unknown)} "
            f"{'is not a tag' if len(unknown) == 1 else 'are not tags'} of {playbook.name}; "
            f"its tags: {', '.join(known)}")


def _claim(request: RunRequest) -> None:
    """Take the run directory for this run: a used one is refused (or, for a run id pdctl made
    up, the next free ``-2``, ``-3``, … is used), so a run never writes over another."""
    try:
        request.run_dir = claim_run_dir(request.run_dir, suffix_if_taken=request.generated_id)
    except RunDirTaken as exc:
        raise UsageError(str(exc)) from exc
    request.run_id = request.run_dir.name


def _emit(document: dict[str, Any], text: str, as_json: bool, out: TextIO, err: TextIO) -> None:
    if as_json:
        out.write(json.dumps(document, indent=2, default=str) + "\n")
        err.write(text + "\n")
    else:
        out.write(text + "\n")
    out.flush()


def _usage_failure(command: str | None, message: str) -> dict[str, Any]:
    return {"schema": "pdctl.run/v1", "command": command, "ok": False,
            "exit_code": exitcodes.ERROR, "exit_meaning": exitcodes.DESCRIPTION[exitcodes.ERROR],
            "status": "usage", "hosts": {}, "endpoints": {},
            "failures": [{"host": None, "task": None, "message": message}]}


def main(argv: list[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Entry point of the ``pdctl`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    as_json = "--json" in argv
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "status":
            from pdctl.status import run_status  # deferred: only status needs requests

            document, text, code = run_status(args.inventory and _check_inventory(args.inventory),
                                              router=args.router, timeout=args.http_timeout)
            _emit(document, text, as_json, out, err)
            return code
        request = _request(args)
        _claim(request)
    except UsageError as exc:
        message = str(exc)
        if as_json:
            out.write(json.dumps(_usage_failure(command, message), indent=2) + "\n")
        err.write(f"{message}\n(see pdctl --help)\n")
        return exitcodes.ERROR
    from pdctl.inventory import endpoints_after_run

    stream = err if as_json else out
    result = run_playbook(request, stream,
                          endpoints=endpoints_after_run(request) if args.command in
                          ("deploy", "bench") else None)
    if args.command == "plan":
        document, text = plan_output(result.summary)
        _emit(document, text, as_json, out, err)
    else:
        _emit(result.summary, render_summary(result.summary), as_json, out, err)
    return result.exit_code


def plan_output(summary: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """What ``pdctl plan`` prints: plan.json with the run summary under ``run``, and the text
    (plan.md, then the run summary). A run that wrote no plan gives ``hosts: {}``."""
    run_dir = Path(str(summary.get("run_dir", ".")))
    try:
        plan = json.loads((run_dir / "plan.json").read_text())
        markdown = (run_dir / "plan.md").read_text()
    except (OSError, ValueError) as exc:
        plan = {"hosts": {}, "complete": False,
                "failures": {"": f"no plan was written ({exc}); see the run summary"}}
        markdown = f"No plan was written: {exc}\n"
    document = {**plan, "run": summary}
    return document, markdown + "\n" + render_summary(summary)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
