"""The contract with community.docker's private Docker API client (module_utils/_docker_api.py).

community.docker's ``module_utils._api`` package and the client's underscore methods are private
to it: a community.docker upgrade may move or change them. These tests fail naming what changed
(module, name, parameter or behaviour) and the installed community.docker version, so the fix
goes into plugins/module_utils/_docker_api.py, the one file that uses them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import struct
from pathlib import Path

import pytest
import requests

FIX = "update plugins/module_utils/_docker_api.py (and its CONTRACT) to the new API"


def community_docker_version() -> str:
    """The installed community.docker version, for the failure messages."""
    try:
        module = importlib.import_module("ansible_collections.community.docker")
        manifest = Path(list(module.__path__)[0]) / "MANIFEST.json"
        return json.loads(manifest.read_text())["collection_info"]["version"]
    except (ImportError, OSError, KeyError, ValueError):
        return "(version unknown)"


def changed(what: str) -> str:
    """A failure message naming the change."""
    return f"community.docker {community_docker_version()}: {what}; {FIX}"


try:
    from ansible_collections.inferops.disagg.plugins.module_utils import _docker_api
except ImportError as _exc:  # a name _docker_api imports moved: say which, not just "error"
    pytest.fail(changed(f"plugins/module_utils/_docker_api.py no longer imports ({_exc})"),
                pytrace=False)


def resolve(module_name: str, dotted: str) -> object:
    """``module_name``.``dotted``, failing with a message that names the missing piece."""
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.fail(changed(f"module {module_name} can no longer be imported ({exc})"))
    path = module_name
    for part in dotted.split("."):
        path = f"{path}.{part}"
        if not hasattr(obj, part):
            pytest.fail(changed(f"{path} no longer exists"))
        obj = getattr(obj, part)
    return obj


CONTRACT_ITEMS = [(module, name, params) for module, names in _docker_api.CONTRACT.items()
                  for name, params in names.items()]


@pytest.mark.parametrize(("module", "name", "params"), CONTRACT_ITEMS,
                         ids=[f"{m.rsplit('.', 1)[1]}.{n}" for m, n, _params in CONTRACT_ITEMS])
def test_names_and_signatures_we_use_still_exist(module, name, params):
    obj = resolve(module, name)
    if params is None:
        assert inspect.isclass(obj) and issubclass(obj, BaseException), \
            changed(f"{module}.{name} is no longer an exception class (we catch it)")
        return
    signature = inspect.signature(obj)
    kinds = {p.kind for p in signature.parameters.values()}
    for param in params:
        if param == "*args":
            ok = inspect.Parameter.VAR_POSITIONAL in kinds
        else:
            ok = param in signature.parameters or inspect.Parameter.VAR_KEYWORD in kinds
        assert ok, changed(f"{module}.{name}{signature} no longer takes {param!r}")


def test_client_sets_the_attributes_we_read():
    source = inspect.getsource(_docker_api.AnsibleDockerClient.__init__)
    for attribute in _docker_api.CLIENT_ATTRIBUTES:
        assert f"self.{attribute} =" in source, \
            changed(f"AnsibleDockerClient.__init__ no longer sets self.{attribute}")


def test_not_found_is_a_docker_error():
    assert issubclass(_docker_api.NotFound, _docker_api.DockerException), \
        changed("_api.errors.NotFound is no longer a DockerException")


def response(status: int, body: bytes, url: str = "http+docker://localhost/x") -> requests.Response:
    """A requests Response as the Docker daemon would send it."""
    res = requests.Response()
    res.status_code = status
    res._content = body
    res.url = url
    res.reason = "Not Found" if status == 404 else "OK"
    res.headers["Content-Type"] = "application/json"
    return res


def frame(stream: int, text: str) -> bytes:
    """One frame of Docker's multiplexed stdout/stderr stream."""
    data = text.encode()
    return struct.pack(">BxxxL", stream, len(data)) + data


class OfflineClient(_docker_api.AnsibleDockerClient):
    """The real client class (its real methods) with the HTTP GET replaced by canned answers;
    no daemon, no AnsibleModule."""

    def __init__(self, answer: requests.Response) -> None:  # no super(): it would connect
        self.base_url = "http+docker://localhost"
        self._version = "1.41"
        self.answer = answer
        self.calls: list[tuple[str, dict]] = []

    def _get(self, url, **kwargs):  # the one method replaced
        self.calls.append((url, kwargs))
        return self.answer


def test_inspect_container_through_the_real_client():
    client = OfflineClient(response(200, b'{"Id": "abc", "State": {"Running": true}}'))
    assert _docker_api.inspect_container(client, "pd prefill") == {
        "Id": "abc", "State": {"Running": True}}, changed("get_json no longer returns the JSON")
    assert client.calls[0][0] == "http+docker://localhost/v1.41/containers/pd%20prefill/json", \
        changed("_url/get_json build a different URL")


def test_inspect_missing_container_is_none():
    client = OfflineClient(response(404, b'{"message": "No such container: x"}'))
    assert _docker_api.inspect_container(client, "x") is None, \
        changed("a 404 from get_json no longer raises _api.errors.NotFound")


def test_read_logs_demultiplexes_stdout_and_stderr():
    client = OfflineClient(response(200, frame(1, "out line\n") + frame(2, "err line\n")))
    assert _docker_api.read_logs(client, "w", 20, tty=False) == "out line\nerr line\n", \
        changed("_get_result_tty no longer joins the multiplexed log stream")
    url, kwargs = client.calls[0]
    assert url == "http+docker://localhost/v1.41/containers/w/logs"
    assert kwargs == {"params": {"stdout": 1, "stderr": 1, "timestamps": 0, "follow": 0,
                                 "tail": "20"}}


def test_read_logs_of_a_tty_container_is_the_raw_stream():
    client = OfflineClient(response(200, b"plain \xe2\x9c\x93 text\n"))
    assert _docker_api.read_logs(client, "w", "all", tty=True) == "plain \u2713 text\n", \
        changed("_get_result_tty no longer returns a TTY container's raw output")


def test_request_exception_covers_transport_errors():
    assert issubclass(requests.exceptions.ConnectionError, _docker_api.RequestException), \
        changed("common_api.RequestException is no longer requests' RequestException")
