"""The acceptance table of bad inputs (tests/bad_inputs.yml, issue 15): every row fails with its
exit code and message, no Python traceback reaches the user, and nothing on the way ran ssh or
docker (a recording ``ssh`` and ``docker`` come first on PATH of every subprocess row).

pdctl, pdbench and engine rows run in-process (``main(argv)``) and Slurm rows through the
plugin in-process (a parse error is ``ansible-inventory``'s exit 1) unless marked
``subprocess``; every other row is a process of its own. The subprocess rows are started
together, four at a time, when the first of them is checked, so the module stays fast on two
cores.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "tests" / "bad_inputs.yml"
BIN = Path(sys.executable).parent
ROWS: list[dict[str, Any]] = yaml.safe_load(TABLE.read_text())["rows"]
IN_PROCESS = ("pdctl", "pdbench", "engine", "slurm")
SLURM_ENV = ("SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_ID", "xP", "yD",
             "DISAGG_COLOCATE_PROXY")

# What `files: {path: loopback}` writes: a 1P1D inventory whose hosts are never contacted
# (TEST-NET-1 addresses), with the rehearsal model profile.
LOOPBACK = {"all": {"vars": {"disagg_model_profile": "rehearsal-tiny"}, "children": {
    "proxy": {"hosts": {"proxy-1": {"ansible_host": "192.0.2.10"}}},
    "prefill": {"hosts": {"prefill-1": {"ansible_host": "192.0.2.11"}}},
    "decode": {"hosts": {"decode-1": {"ansible_host": "192.0.2.21"}}}}}}

# Recording stand-ins: a row that reaches a host or a container engine leaves a line here.
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$BAD_INPUTS_CALLS"
exit 255
"""


@dataclass
class Outcome:
    """What one row gave."""

    code: int | None
    stdout: str
    stderr: str
    calls: str = ""


def _subst(value: Any, tmp: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp)).replace("{repo}", str(REPO))
    if isinstance(value, list):
        return [_subst(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _subst(v, tmp) for k, v in value.items()}
    return value


def _prepare(row: dict[str, Any], tmp: Path) -> None:
    for rel, text in (row.get("files") or {}).items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(LOOPBACK) if text == "loopback" else _subst(text, tmp))
    if row["entry"] == "validate":
        inv = tmp / "inventory"
        (inv / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
        hosts = row.get("inventory") or {"all": {"children": LOOPBACK["all"]["children"]}}
        (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
        group_vars = {"disagg_model_profile": "rehearsal-tiny",
                      **_subst(row.get("group_vars") or {}, tmp)}
        (inv / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump(group_vars))
    if row["entry"] == "slurm":
        (tmp / "alloc.slurm.yml").write_text("plugin: inferops.disagg.slurm\n" + row["slurm"])


def _argv(row: dict[str, Any], tmp: Path) -> list[str]:
    argv = [str(a) for a in _subst(row.get("argv") or [], tmp)]
    entry = row["entry"]
    if entry == "pdctl":
        return [str(BIN / "pdctl"), *argv]
    if entry == "pdbench":
        return [sys.executable, "-m", "pdbench", *argv]
    if entry == "engine":
        return [sys.executable, "-m", "pd_rehearsal", *argv]
    if entry == "cluster":
        return [sys.executable, str(REPO / "scripts" / "cluster.py"), *argv]
    if entry == "rehearsal_image":
        return [sys.executable, str(REPO / "scripts" / "rehearsal_image.py"), *argv]
    if entry == "slurm":
        return [str(BIN / "ansible-inventory"), "-i", str(tmp / "alloc.slurm.yml"), "--list"]
    if entry == "validate":
        return [str(BIN / "ansible-playbook"), "-i", str(tmp / "inventory"),
                str(REPO / "playbooks" / "validate.yml"),
                "-e", json.dumps(row.get("extra_vars") or {})]
    raise AssertionError(f"{row['id']}: unknown entry {entry!r}")


def _run_process(row: dict[str, Any], tmp: Path, fakebin: Path) -> Outcome:
    _prepare(row, tmp)
    calls = tmp / "calls.log"
    env = {k: v for k, v in os.environ.items() if k not in SLURM_ENV}
    env.update({"PATH": os.pathsep.join([str(fakebin), str(BIN), env.get("PATH", "")]),
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
                "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
                "PDCTL_RUNS_DIR": str(tmp / "runs"), "BAD_INPUTS_CALLS": str(calls),
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    env.update(_subst(row.get("env") or {}, tmp))
    try:
        proc = subprocess.run(_argv(row, tmp), cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stdout or ""), f"timed out: {exc}")
    return Outcome(proc.returncode, proc.stdout, proc.stderr,
                   calls.read_text() if calls.exists() else "")


def _exit_code(exc: SystemExit, err: io.StringIO) -> int:
    if isinstance(exc.code, str):  # SystemExit("message"): Python prints it and exits 1
        err.write(exc.code + "\n")
        return 1
    return int(exc.code or 0)


def _run_in_process(row: dict[str, Any], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    _prepare(row, tmp)
    monkeypatch.setenv("PDCTL_RUNS_DIR", str(tmp / "runs"))
    for key, value in _subst(row.get("env") or {}, tmp).items():
        monkeypatch.setenv(key, value)
    argv = [str(a) for a in _subst(row.get("argv") or [], tmp)]
    out, err = io.StringIO(), io.StringIO()
    if row["entry"] == "slurm":
        return _slurm_in_process(row, tmp, monkeypatch)
    if row["entry"] == "pdctl":
        from pdctl import cli

        return Outcome(cli.main(argv, out=out, err=err), out.getvalue(), err.getvalue())
    if row["entry"] == "pdbench":
        from pdbench.cli import main
    else:
        from pd_rehearsal.__main__ import main  # type: ignore[no-redef]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = _exit_code(exc, err)
    return Outcome(code, out.getvalue(), err.getvalue())


def _slurm_in_process(row: dict[str, Any], tmp: Path,
                      monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """The plugin's parse, as ``ansible-inventory`` runs it: an error is exit 1."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    for key in SLURM_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in _subst(row.get("env") or {}, tmp).items():
        monkeypatch.setenv(key, value)
    plugin = inventory_loader.get("inferops.disagg.slurm")
    inventory = InventoryManager(loader=DataLoader(), sources=None)
    try:
        plugin.parse(inventory._inventory, DataLoader(), str(tmp / "alloc.slurm.yml"),
                     cache=False)
    except AnsibleError as exc:
        return Outcome(1, "", str(exc))
    return Outcome(0, "", "")


def _in_process(row: dict[str, Any]) -> bool:
    return row["entry"] in IN_PROCESS and not row.get("subprocess")


@pytest.fixture(scope="module")
def fakebin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ssh`` and ``docker`` that only record that they were called."""
    path = tmp_path_factory.mktemp("fakebin")
    for name in ("ssh", "scp", "sftp", "docker"):
        (path / name).write_text(RECORDER)
        (path / name).chmod(0o755)
    return path


@pytest.fixture(scope="module")
def process_outcomes(tmp_path_factory: pytest.TempPathFactory,
                     fakebin: Path) -> dict[str, Outcome]:
    """Every subprocess row, run four at a time (they mostly wait on Ansible's start-up)."""
    rows = [r for r in ROWS if not _in_process(r)]
    tmps = {r["id"]: tmp_path_factory.mktemp(r["id"]) for r in rows}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {r["id"]: pool.submit(_run_process, r, tmps[r["id"]], fakebin) for r in rows}
        return {key: future.result() for key, future in futures.items()}


def _param(row: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(reason=row["xfail"], strict=False)] if row.get("xfail") else []
    return pytest.param(row, id=row["id"], marks=marks)


def test_the_table_is_the_acceptance_table():
    """At least 60 rows over every kind of input the issue names, ids unique, fields known."""
    assert len(ROWS) >= 60
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    entries = {r["entry"] for r in ROWS}
    assert entries >= {"pdctl", "pdbench", "engine", "slurm", "validate", "cluster",
                       "rehearsal_image"}
    assert any(r["id"].startswith("profile-") for r in ROWS)
    assert any(r["id"].startswith("inventory-") for r in ROWS)
    assert any(r["id"].startswith("variable-") for r in ROWS)
    known = {"id", "entry", "argv", "files", "env", "exit", "message", "subprocess", "xfail",
             "slurm", "inventory", "group_vars", "extra_vars"}
    for row in ROWS:
        assert set(row) <= known, (row["id"], set(row) - known)
        assert isinstance(row["exit"], int) and row["exit"] != 0 and row["message"], row["id"]


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input(row: dict[str, Any], request: pytest.FixtureRequest, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    if _in_process(row):
        outcome = _run_in_process(row, tmp_path, monkeypatch)
        message = row["message"].replace("{tmp}", str(tmp_path))
    else:
        outcomes: dict[str, Outcome] = request.getfixturevalue("process_outcomes")
        outcome = outcomes[row["id"]]
        message = row["message"]
    text = outcome.stdout + outcome.stderr
    if "{tmp}" in message:  # the row's own directory: compare the part after it
        message = message.split("{tmp}", 1)[1]
    assert "Traceback" not in text, text[-3000:]
    assert outcome.code == row["exit"], (outcome.code, text[-3000:])
    assert message in text, text[-3000:]
    assert outcome.calls == "", f"ssh/docker was called: {outcome.calls}"
