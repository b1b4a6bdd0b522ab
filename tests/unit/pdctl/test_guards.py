"""pdctl's guards (issue 15): unknown --tags refused, a run that ran none of the command's tasks
is not ok, a used run directory is never written into, bad timeouts and router URLs refused."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import pytest

from pdctl import cli, exitcodes
from pdctl.runner import RunDirTaken, RunRequest, claim_run_dir, run_playbook
from pdctl.tags import SPECIAL_TAGS, unknown_tags

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "pdctl"
HOSTS = str(FIXTURES / "inventory" / "hosts.yml")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_deploy_tags_are_what_ansible_lists():
    unknown, known = unknown_tags(REPO / "playbooks" / "deploy.yml", "preflight,nope", REPO)
    assert unknown == ["nope"]
    assert "preflight" in known and set(SPECIAL_TAGS) <= set(known)


def test_unknown_tag_refused_before_running(tmp_path):
    code, out, err = run_cli("deploy", "-i", HOSTS, "--tags", "routr_run",
                             "--run-dir", str(tmp_path / "r"))
    assert code == 1 and out == ""
    assert "'routr_run' is not a tag of deploy.yml; its tags: all, always" in err
    assert not (tmp_path / "r").exists()  # refused before the run directory is made


@pytest.mark.parametrize(("argv", "message"), [
    (["deploy", "-i", HOSTS, "--timeout", "-5"], "--timeout: must be a whole number"),
    (["deploy", "-i", HOSTS, "--timeout", "0"], "--timeout: must be a whole number"),
    (["status", "-i", HOSTS, "--http-timeout", "-1"], "--http-timeout: must be a number"),
    (["status", "-i", HOSTS, "--http-timeout", "nan"], "--http-timeout: must be a number"),
    (["status", "-i", HOSTS, "--router", "localhost:30000"], "is not an http(s) URL"),
    (["status", "-i", HOSTS, "--router", "http://h:99999"], "is not a URL"),
    (["status", "-i", HOSTS, "--router", "http://:30000"], "is not an http(s) URL"),
    (["deploy", "-i", HOSTS, "--run-id", "a/b"], "a run id is one directory name"),
])
def test_bad_values_refused(argv, message):
    code, _, err = run_cli(*argv)
    assert code == 1 and message in err, err


def test_router_url_accepted():
    args = cli.build_parser().parse_args(["status", "-i", HOSTS, "--router",
                                          "http://10.0.0.1:30000/"])
    assert args.router == "http://10.0.0.1:30000"


def test_used_run_dir_refused_and_generated_one_gets_a_suffix(tmp_path):
    first = claim_run_dir(tmp_path / "r")
    assert (first / "pdctl.log").is_file()
    with pytest.raises(RunDirTaken, match="already holds a run"):
        claim_run_dir(tmp_path / "r")
    assert claim_run_dir(tmp_path / "r", suffix_if_taken=True) == tmp_path / "r-2"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "summary.json").write_text("{}")
    with pytest.raises(RunDirTaken, match=r"summary\.json"):
        claim_run_dir(tmp_path / "other")
    (tmp_path / "empty").mkdir()
    assert claim_run_dir(tmp_path / "empty") == tmp_path / "empty"  # an empty one is fine


def test_reused_run_id_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PDCTL_RUNS_DIR", str(tmp_path))
    (tmp_path / "r-1").mkdir()
    (tmp_path / "r-1" / "pdctl.log").write_text("a previous run\n")
    code, out, err = run_cli("deploy", "-i", HOSTS, "--run-id", "r-1", "--json")
    assert code == 1 and '"status": "usage"' in out
    assert "already holds a run (pdctl.log)" in err
    assert (tmp_path / "r-1" / "pdctl.log").read_text() == "a previous run\n"


def _fake_runner(monkeypatch, events: list[dict]) -> None:
    """``ansible_runner.run`` replaced: feeds ``events`` and reports success."""
    def run(**kwargs):
        for event in events:
            kwargs["event_handler"](event)
        return types.SimpleNamespace(status="successful", rc=0)

    monkeypatch.setitem(sys.modules, "ansible_runner", types.SimpleNamespace(run=run))


def _result(role: str | None, host: str = "decode-1", kind: str = "runner_on_ok") -> dict:
    return {"event": kind, "event_data": {"host": host, "task": "t", "role": role, "res": {}}}


def _request(tmp_path: Path, **kw) -> RunRequest:
    return RunRequest(command="deploy", playbook=REPO / "playbooks" / "deploy.yml",
                      inventory=HOSTS, run_dir=tmp_path / "r", run_id="r", project_dir=REPO,
                      required_roles=exitcodes.REQUIRED_ROLES["deploy"], **kw)


def test_deploy_that_ran_no_deploy_task_is_not_ok(tmp_path, monkeypatch):
    _fake_runner(monkeypatch, [_result("_common", "localhost"),
                               _result("preflight"), _result("sglang_worker",
                                                             kind="runner_on_skipped")])
    result = run_playbook(_request(tmp_path, tags="preflight"), io.StringIO(), quiet=True)
    assert result.exit_code == exitcodes.DEPLOY_FAILED
    summary = result.summary
    assert summary["ok"] is False and summary["status"] == "nothing_ran"
    assert "no task of etcd, router, sglang_worker ran on any host (--tags preflight selected " \
           "none of them)" in summary["failures"][0]["message"]


def test_deploy_that_ran_a_worker_task_is_ok(tmp_path, monkeypatch):
    _fake_runner(monkeypatch, [_result("inferops.disagg.sglang_worker")])
    result = run_playbook(_request(tmp_path, limit="decode-1"), io.StringIO(), quiet=True)
    assert result.exit_code == 0 and result.summary["status"] == "successful"


def test_own_playbooks_require_their_roles():
    assert set(exitcodes.REQUIRED_ROLES) == set(exitcodes.FAILED_CODE)
    for command, roles in exitcodes.REQUIRED_ROLES.items():
        for role in roles:
            assert (REPO / "roles" / role / "tasks" / "main.yml").is_file(), (command, role)


def test_failed_run_keeps_what_it_wrote(tmp_path, monkeypatch):
    """A run that fails keeps every file written before the failure, plus its summary."""
    def run(**kwargs):
        run_dir = Path(kwargs["private_data_dir"])
        (run_dir / "decode-1").mkdir()
        (run_dir / "decode-1" / "pd-decode.log").write_text("worker log\n")
        kwargs["event_handler"]({"event": "runner_on_failed", "event_data": {
            "host": "decode-1", "task": "Check worker health", "role": "sglang_worker",
            "res": {"msg": "never answered /health"}}})
        return types.SimpleNamespace(status="failed", rc=2)

    monkeypatch.setitem(sys.modules, "ansible_runner", types.SimpleNamespace(run=run))
    result = run_playbook(_request(tmp_path), io.StringIO(), quiet=True)
    assert result.exit_code == exitcodes.DEPLOY_FAILED
    run_dir = tmp_path / "r"
    assert (run_dir / "decode-1" / "pd-decode.log").read_text() == "worker log\n"
    assert (run_dir / "summary.json").is_file() and (run_dir / "pdctl.log").is_file()
    assert "never answered /health" in result.summary["failures"][0]["message"]
