"""container_logs: the log, the state and, with ``inspect``, the docker inspect with every
secret environment value replaced by *** before it leaves the host."""

from __future__ import annotations

import json

from ansible_collections.inferops.disagg.plugins.modules import container_logs

TOKEN = "hf_module_test_9f8e7d6c"


class Client:
    """A client whose container (with a token in its env and command) logs two lines."""

    def __init__(self, exists: bool = True) -> None:
        self.exists = exists
        self.log_reads = 0

    def get_json(self, pathfmt: str, name: str) -> dict:
        if not self.exists:
            from ansible_collections.inferops.disagg.plugins.module_utils._docker_api import (
                NotFound,
            )
            raise NotFound("no such container")
        return {"Id": "0123456789abcdef", "Name": f"/{name}", "RestartCount": 0,
                "Args": ["--model", "/m"],
                "State": {"Status": "running", "Running": True},
                "Config": {"Tty": False, "Env": [f"HF_TOKEN={TOKEN}", "MC_GID_INDEX=3",
                                                 "MY_ORG_AUTH=org-auth-1234"],
                           "Cmd": ["python3", "-m", "x", f"--note={TOKEN}"]}}

    def _url(self, pathfmt: str, name: str) -> str:
        return pathfmt.format(name)

    def _get(self, url: str, params: dict) -> bytes:
        self.log_reads += 1
        return b"loading weights\nready\n"

    def _get_result_tty(self, stream: bool, res: bytes, is_tty: bool) -> bytes:
        return res


def params(**over: object) -> dict:
    return {"name": "pd-decode", "tail": "all", "inspect": False, "secret_env_names": [], **over}


def test_logs_and_state_without_inspect() -> None:
    got = container_logs.read(Client(), params())
    assert got["exists"] and got["logs"] == "loading weights\nready\n"
    assert got["state"]["running"] and "container" not in got and not got["changed"]


def test_inspect_is_redacted_on_the_host() -> None:
    got = container_logs.read(Client(), params(inspect=True, secret_env_names=["my_org_*"]))
    env = got["container"]["Config"]["Env"]
    assert env == ["HF_TOKEN=***", "MC_GID_INDEX=3", "MY_ORG_AUTH=***"]
    assert got["container"]["Config"]["Cmd"][-1] == "--note=***"
    assert got["redacted"] == ["HF_TOKEN", "MY_ORG_AUTH"]
    text = json.dumps(got)
    assert TOKEN not in text and "org-auth-1234" not in text


def test_tail_0_reads_no_log_and_a_missing_container() -> None:
    client = Client()
    got = container_logs.read(client, params(tail="0", inspect=True))
    assert got["logs"] == "" and client.log_reads == 0 and got["container"]["Id"]
    assert container_logs.read(Client(exists=False), params(inspect=True)) == {
        "changed": False, "exists": False, "logs": ""}
