"""container_wait: its wait budget is ``wait_timeout``; community.docker's Docker API ``timeout``
(each call to the daemon) keeps its own meaning and default."""

from __future__ import annotations

import socket

import pytest
from ansible_collections.community.docker.plugins.module_utils.util import DOCKER_COMMON_ARGS
from ansible_collections.inferops.disagg.plugins.modules import container_wait


class Captured(Exception):
    """Raised by the stand-in client factory to stop main() after it got the spec."""


def spec_of_main(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The argument_spec container_wait.main() hands to the Docker client."""
    seen: dict = {}

    def fake_client(argument_spec: dict) -> None:
        seen.update(argument_spec)
        raise Captured

    monkeypatch.setattr(container_wait, "docker_client", fake_client)
    with pytest.raises(Captured):
        container_wait.main()
    return seen


def test_wait_budget_does_not_override_the_docker_api_timeout(monkeypatch):
    spec = spec_of_main(monkeypatch)
    assert spec["wait_timeout"] == {"type": "int", "required": True}
    assert "timeout" not in spec
    merged = {**DOCKER_COMMON_ARGS, **spec}  # what AnsibleDockerClient builds
    assert merged["timeout"] == DOCKER_COMMON_ARGS["timeout"]
    assert merged["timeout"]["default"] == 60


class RunningContainer:
    """A client whose container runs and logs two lines (no daemon)."""

    def get_json(self, pathfmt: str, name: str) -> dict:
        return {"Id": "0123456789abcdef", "Name": f"/{name}", "RestartCount": 0,
                "State": {"Status": "running", "Running": True}, "Config": {"Tty": True}}

    def _url(self, pathfmt: str, name: str) -> str:
        return pathfmt.format(name)

    def _get(self, url: str, params: dict) -> bytes:
        return b"loading weights\nstill loading\n"

    def _get_result_tty(self, stream: bool, res: bytes, is_tty: bool) -> bytes:
        return res


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wait_gives_up_after_wait_timeout():
    params = {"name": "pd-prefill", "url": f"http://127.0.0.1:{closed_port()}/health",
              "wait_timeout": 1, "interval": 0.2, "probe_timeout": 0.5, "status_code": [200],
              "log_lines": 5}
    result = container_wait.wait(RunningContainer(), params)
    assert result["reason"] == "timeout" and result["healthy"] is False
    assert 1.0 <= result["elapsed"] < 5
    assert result["msg"].startswith(f"{params['url']} did not answer 200 within 1s")
    assert result["log_tail"] == ["loading weights", "still loading"]
