"""Command line: extra vars, usage errors (exit 1, JSON when asked), what a request carries."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pdctl import cli
from pdctl.events import Recorder
from pdctl.runner import PLAYBOOKS, collection_root, new_run_id
from pdctl.summary import build_summary

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "pdctl"


@pytest.mark.parametrize(("items", "expected"), [
    (["a=1"], {"a": "1"}),
    (["a=1 b='two words'"], {"a": "1", "b": "two words"}),
    (['{"n": 2, "l": [1]}'], {"n": 2, "l": [1]}),
    (["a=1", "a=2"], {"a": "2"}),
    (["x=a=b"], {"x": "a=b"}),
])
def test_parse_extra_vars(items, expected):
    assert cli.parse_extra_vars(items) == expected


def test_parse_extra_vars_file(tmp_path):
    (tmp_path / "v.yml").write_text("disagg_xp: 2\nnested: {k: v}\n")
    assert cli.parse_extra_vars([f"@{tmp_path / 'v.yml'}"]) == {"disagg_xp": 2,
                                                                "nested": {"k": "v"}}


@pytest.mark.parametrize(("items", "message"), [
    (["novalue"], "expected key=value"),
    (["1a=2"], "expected key=value"),
    (["@/does/not/exist.yml"], "cannot read"),
    (["{not: [closed"], "not valid YAML/JSON"),
])
def test_parse_extra_vars_errors(items, message):
    with pytest.raises(cli.UsageError, match=message):
        cli.parse_extra_vars(items)


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


USAGE = [
    (["deploy"], "the following arguments are required: -i/--inventory"),
    (["frobnicate", "-i", "x"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
    (["deploy", "-i", "/does/not/exist"], "inventory '/does/not/exist' does not exist"),
    (["deploy", "-i", str(FIXTURES / "inventory" / "hosts.yml"), "--xp", "0"],
     "--xp must be >= 1, got 0"),
    (["deploy", "-i", str(FIXTURES / "inventory" / "hosts.yml"), "--xp", "two"],
     "argument --xp: invalid int value: 'two'"),
    (["deploy", "-i", str(FIXTURES / "inventory" / "hosts.yml"), "--playbook", "/nope.yml"],
     "playbook /nope.yml not found"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE)
def test_usage_errors_exit_1(argv, message):
    code, out, err = run_cli(*argv)
    assert code == 1
    assert message in err and out == ""


def test_usage_error_as_json():
    code, out, _ = run_cli("deploy", "-i", "/does/not/exist", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1 and doc["ok"] is False
    assert doc["failures"] == [{"host": None, "task": None,
                                "message": "inventory '/does/not/exist' does not exist"}]


def test_request_carries_vars_env_and_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PDCTL_RUNS_DIR", str(tmp_path / "runs"))
    args = cli.build_parser().parse_args([
        "deploy", "-i", str(FIXTURES / "inventory" / "hosts.yml"), "--model", "Qwen3-32B",
        "--xp", "2", "--yd", "1", "-e", "a=1", "--run-id", "r-1", "--limit", "prefill",
        "--timeout", "600", "--playbook", str(FIXTURES / "playbooks" / "ok.yml")])
    req = cli._request(args)
    assert req.extravars == {"a": "1", "disagg_model_profile": "Qwen3-32B", "disagg_xp": 2,
                             "disagg_yd": 1}
    assert req.envvars == {"xP": "2", "yD": "1"}
    assert req.run_dir == tmp_path / "runs" / "r-1" and req.run_id == "r-1"
    assert req.playbook == FIXTURES / "playbooks" / "ok.yml"
    assert req.project_dir == collection_root()
    assert (req.limit, req.timeout) == ("prefill", 600)


def test_run_dir_names_the_run(tmp_path):
    args = cli.build_parser().parse_args([
        "bench", "-i", str(FIXTURES / "inventory" / "hosts.yml"), "--run-dir",
        str(tmp_path / "job-4242"), "--playbook", str(FIXTURES / "playbooks" / "ok.yml")])
    req = cli._request(args)
    assert req.run_dir == tmp_path / "job-4242" and req.run_id == "job-4242"


def test_commands_map_to_collection_playbooks():
    assert PLAYBOOKS == {"preflight": "playbooks/preflight.yml", "deploy": "playbooks/deploy.yml",
                         "plan": "playbooks/deploy.yml", "bench": "playbooks/benchmark.yml",
                         "rollout": "playbooks/rolling_update.yml",
                         "scale": "playbooks/scale.yml",
                         "down": "playbooks/teardown.yml", "logs": "playbooks/collect_logs.yml"}
    assert (collection_root() / "galaxy.yml").is_file()
    assert all((collection_root() / path).is_file() for path in PLAYBOOKS.values())


def test_new_run_id_format():
    from datetime import UTC, datetime
    rid = new_run_id("deploy", datetime(2026, 11, 26, 5, 23, 0, tzinfo=UTC))
    prefix = "20261126T052300Z-deploy-"
    assert rid.startswith(prefix) and len(rid) == len(prefix) + 4


def test_every_command_has_help():
    parser = cli.build_parser()
    for command in ("preflight", "deploy", "bench", "status", "logs", "down"):
        with pytest.raises(SystemExit) as info:
            parser.parse_args([command, "--help"])
        assert info.value.code == 0


def test_plan_runs_deploy_in_check_and_diff_mode(tmp_path):
    args = cli.build_parser().parse_args([
        "plan", "-i", str(FIXTURES / "inventory" / "hosts.yml"), "--run-dir", str(tmp_path / "p")])
    req = cli._request(args)
    assert req.check and req.playbook.name == "deploy.yml"
    deploy = cli._request(cli.build_parser().parse_args([
        "deploy", "-i", str(FIXTURES / "inventory" / "hosts.yml")]))
    assert not deploy.check


def _summary(run_dir: Path, code: int) -> dict:
    return build_summary(Recorder(), command="plan", status="successful" if code == 0 else "failed",
                         rc=code and 2, exit_code=code, run_id="r1", run_dir=str(run_dir),
                         inventory="hosts.yml", playbook="deploy.yml", started="t0", finished="t1",
                         duration_s=1.0)


def test_plan_output_is_the_plan_with_the_run_summary(tmp_path):
    plan = {"schema": "inferops.disagg.plan/v1", "hosts": {"decode-1": {"containers": []}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "plan.md").write_text("# Deploy plan\n")
    summary = _summary(tmp_path, 0)
    document, text = cli.plan_output(summary)
    assert document["hosts"] == plan["hosts"] and document["run"] is summary
    assert text.startswith("# Deploy plan\n")


def test_plan_output_says_when_no_plan_was_written(tmp_path):
    summary = _summary(tmp_path / "none", 3)
    document, text = cli.plan_output(summary)
    assert document["hosts"] == {} and not document["complete"]
    assert "no plan was written" in document["failures"][""]
    assert text.startswith("No plan was written")


def test_scale_remove_sets_the_hosts_to_remove(tmp_path):
    inv = str(FIXTURES / "inventory" / "hosts.yml")
    args = cli.build_parser().parse_args(["scale", "-i", inv, "--remove", "decode-2, prefill-3",
                                          "--run-dir", str(tmp_path / "r")])
    req = cli._request(args)
    assert req.extravars["disagg_remove_hosts"] == ["decode-2", "prefill-3"]
    assert req.playbook.name == "scale.yml"
    plain = cli._request(cli.build_parser().parse_args(["scale", "-i", inv, "--run-dir",
                                                        str(tmp_path / "s")]))
    assert "disagg_remove_hosts" not in plain.extravars
    with pytest.raises(cli.UsageError, match="--remove: name at least one host"):
        cli._request(cli.build_parser().parse_args(["scale", "-i", inv, "--remove", " , "]))
