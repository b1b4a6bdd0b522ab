"""The deploy plan: container entries, the plan document and plan.md (module_utils/_plan.py).

The docker_container results below have the shape community.docker 4.x returns with ``diff``
(``diff.before``/``diff.after`` hold only the settings that differ, plus state keys); the
``before`` results are docker_container_info's (``exists``, ``container.State``).
"""

from __future__ import annotations

import json

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _plan

SPEC = {
    "name": "pd-decode", "what": "decode worker", "component": "decode",
    "image": "inferops/sglang-pd:0.5.2-rocm630",
    "argv": ["python3", "-m", "sglang.launch_server", "--port", 8200,
             "--disaggregation-ib-device", "mlx5_0,mlx5_2"],
    "env": {"MC_GID_INDEX": "3", "NCCL_SOCKET_IFNAME": "eth0", "HF_TOKEN": "hf_abcdefSECRET",
            "AWS_SECRET_ACCESS_KEY": "x", "HSA_NO_SCRATCH_RECLAIM": "1"},
    "devices": ["/dev/kfd", "/dev/dri", "/dev/infiniband"],
    "volumes": ["/models:/models:ro"], "network_mode": "host", "ipc_mode": "host",
    "shm_size": "64G", "ulimits": ["memlock:-1:-1"], "capabilities": ["IPC_LOCK"],
    "groups": ["video"], "security_opts": ["seccomp=unconfined"], "restart_policy": "no",
    "labels": {"io.inferops.disagg.component": "decode"},
}
RUNNING = {"exists": True, "container": {"State": {"Status": "running", "Running": True}}}
EXITED = {"exists": True, "container": {"State": {"Status": "exited", "Running": False,
                                                  "ExitCode": 137}}}
MISSING = {"exists": False, "container": {}}


def entry(before: dict, result: dict, check_mode: bool = False) -> dict:
    return _plan.container_entry(SPEC, before, result, check_mode)


@pytest.mark.parametrize(("before", "result", "action", "reason", "report"), [
    (RUNNING, {"changed": False}, "unchanged", "runs with the same settings (running)",
     "pd-decode: unchanged, running"),
    (MISSING, {"changed": True, "diff": {"before": {"exists": False},
                                         "after": {"exists": True}}},
     "create", "it does not exist", "pd-decode: created (it did not exist)"),
    (RUNNING, {"changed": True, "diff": {"before": {"env": ["A=1"], "command": ["x"],
                                                    "running": True},
                                         "after": {"env": ["A=2"], "command": ["y"]}}},
     "recreate", "changed: command, env", "pd-decode: recreated (changed: command, env)"),
    (EXITED, {"changed": True, "diff": {"before": {"running": False},
                                        "after": {"running": True}}},
     "start", "it is exited, exit code 137",
     "pd-decode: started again (it was exited, exit code 137)"),
    (RUNNING, {"changed": True, "diff": {}}, "recreate",
     "docker_container reports a change it does not name", "pd-decode: recreated"),
])
def test_action_reason_and_report(before: dict, result: dict, action: str, reason: str,
                                  report: str) -> None:
    got = entry(before, result)
    assert (got["action"], got["reason"], got["report"]) == (action, reason, report)


def test_check_mode_words_the_report_as_what_would_happen() -> None:
    got = entry(RUNNING, {"changed": True, "diff": {"before": {"image": "a"}}}, True)
    assert got["report"] == "pd-decode: would be recreated (changed: image)"
    assert entry(RUNNING, {"changed": False}, True)["report"] == "pd-decode: unchanged, running"


def test_entry_carries_the_exact_spec_with_secrets_redacted() -> None:
    got = entry(MISSING, {"changed": True})
    assert got["argv"][-1] == "mlx5_0,mlx5_2" and got["argv"][4] == "8200"
    assert got["env"]["MC_GID_INDEX"] == "3"
    assert got["env"]["HF_TOKEN"] == _plan.REDACTED
    assert got["env"]["AWS_SECRET_ACCESS_KEY"] == _plan.REDACTED
    assert "hf_abcdefSECRET" not in json.dumps(got)
    for key in ("image", "devices", "volumes", "network_mode", "ipc_mode", "ulimits",
                "capabilities"):
        assert got[key] == SPEC[key]
    assert (got["role"], got["step"]) == ("decode", 2)


def _plan_of(failures: dict | None = None) -> dict:
    router = dict(SPEC, name="pd-router", component="router", what="router")
    etcd = dict(SPEC, name="pd-etcd", component="etcd", what="etcd")
    prefill = dict(SPEC, name="pd-prefill", component="prefill", what="prefill worker")
    return _plan.document(
        {"proxy-1": [_plan.container_entry(etcd, MISSING, {"changed": True}),
                     _plan.container_entry(router, RUNNING, {"changed": False})],
         "prefill-1": [_plan.container_entry(prefill, MISSING, {"changed": True})],
         "decode-1": [entry(RUNNING, {"changed": True, "diff": {"before": {"env": []}}})]},
        {"decode-1": {"ib_devices": ["mlx5_0", "mlx5_2"], "line": "RDMA mlx5_0,mlx5_2"}},
        failures, run_id="r1", inventory="inventories/x")


def test_document_has_the_issue_shape_and_the_start_order() -> None:
    plan = _plan_of()
    assert sorted(plan["hosts"]) == ["decode-1", "prefill-1", "proxy-1"]
    for host in plan["hosts"].values():
        for container in host["containers"]:
            assert {"name", "role", "image", "argv", "env", "devices", "volumes", "action",
                    "reason"} <= set(container)
    assert plan["counts"] == {"create": 2, "recreate": 1, "start": 0, "unchanged": 1}
    assert [s["step"] for s in plan["start_order"]] == [1, 2, 3]
    assert plan["start_order"][0]["containers"] == ["pd-etcd on proxy-1"]
    assert plan["start_order"][1]["containers"] == ["pd-decode on decode-1",
                                                    "pd-prefill on prefill-1"]
    assert plan["hosts"]["decode-1"]["launch_settings"]["ib_devices"] == ["mlx5_0", "mlx5_2"]
    assert plan["complete"] and plan["check_mode"]
    json.dumps(plan)


def test_markdown_lists_every_container_its_spec_and_why_the_run_stopped() -> None:
    text = _plan.markdown(_plan_of({"decode-1": "decode-1: image x is not on this host"}))
    assert "**Stopped on decode-1:** decode-1: image x is not on this host" in text
    assert "| decode-1 | 2 | pd-decode | recreate | changed: env |" in text
    assert "1. etcd" in text and "3. the router" in text
    assert "--disaggregation-ib-device mlx5_0,mlx5_2" in text
    assert "HF_TOKEN=***" in text and "hf_abcdefSECRET" not in text
    assert "Launch settings: RDMA mlx5_0,mlx5_2" in text
    assert text.startswith("# Deploy plan (check mode: nothing was changed on any host)")
