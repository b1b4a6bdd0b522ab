"""Tables for the host tunable parsers and the Docker API client (a real unix socket)."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _tunables
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError

from ._preflight_helpers import RECORDED, TREES, text


@pytest.mark.parametrize(("path", "memlock", "nofile"), [
    ("proc/limits-debian12-host.txt", 8388608, 20000),
    ("proc/limits-docker-run-default.txt", 8388608, 20000),  # container inherits dockerd's limit
])
def test_parse_limits_recorded(path, memlock, nofile):
    got = _tunables.parse_limits(text(RECORDED / path))
    assert got["memlock"] == {"soft": memlock, "hard": memlock}
    assert got["nofile"]["soft"] == nofile


@pytest.mark.parametrize(("tree", "memlock"), [("fit", -1), ("unfit", 65536)])
def test_parse_limits_trees(tree, memlock):
    got = _tunables.parse_limits(text(TREES / tree / "proc/self/limits"))
    assert got["memlock"]["soft"] == memlock


@pytest.mark.parametrize(("doc", "check"), [
    ("Limit Soft Limit Hard Limit Units\n", "host.memlock"),
    ("Max locked memory         lots                 lots                 bytes\n", "host.memlock"),
    ("Max locked memory  unlimited unlimited bytes\nMax open files  many many files\n",
     "host.nofile"),
])
def test_parse_limits_malformed(doc, check):
    with pytest.raises(ProbeError) as err:
        _tunables.parse_limits(doc)
    assert str(err.value).startswith("/proc/self/limits: ") and f"check {check}" in str(err.value)


@pytest.mark.parametrize(("out", "expected"),
                         [("unlimited\n", -1), ("64\n", 65536), ("8192", 8388608)])
def test_parse_ulimit(out, expected):
    assert _tunables.parse_ulimit_kib(out) == expected


def test_parse_ulimit_malformed():
    with pytest.raises(ProbeError, match=r"^ulimit -l: "):
        _tunables.parse_ulimit_kib("sh: ulimit: bad option")


@pytest.mark.parametrize(("cmdline", "mode"), [
    ("BOOT_IMAGE=/vmlinuz ro iommu=pt", "pt"),
    ("ro amd_iommu=on iommu=pt", "pt"),
    ("ro intel_iommu=on,pt", "pt"),
    ("ro amd_iommu=off", "off"),
    ("ro quiet splash", "translated"),
    ("ro amd_iommu=on", "translated"),
    ("mitigations=auto console=ttyS0 quiet reboot=k panic=1", "translated"),  # this CI VM
])
def test_iommu_mode(cmdline, mode):
    assert _tunables.iommu_mode(cmdline)["mode"] == mode


def test_parse_meminfo_recorded():
    got = _tunables.parse_meminfo(text(RECORDED / "proc/meminfo-debian12.txt"))
    assert got["mem_total_bytes"] > 0 and got["hugepage_size_bytes"] == 2 * 1024 * 1024


def test_parse_meminfo_malformed():
    with pytest.raises(ProbeError,
                       match=r"^/proc/meminfo: no MemTotal line \(check host.hugepages\)"):
        _tunables.parse_meminfo("garbage")


def test_parse_docker_info_recorded():
    got = _tunables.parse_docker_info(text(RECORDED / "docker/info-20.10.24.json"))
    assert got["server_version"] == "20.10.24+dfsg1"
    assert (got["cgroup_driver"], got["cgroup_version"]) == ("cgroupfs", "1")
    assert "runc" in got["runtimes"]


@pytest.mark.parametrize(("body", "problem"), [
    ('{"message": "page not found"}', "not a Docker /info document"),
    ("<html>502</html>", "malformed JSON"),
])
def test_parse_docker_info_malformed(body, problem):
    with pytest.raises(ProbeError) as err:
        _tunables.parse_docker_info(body)
    assert problem in str(err.value) and "check docker.reachable" in str(err.value)


@pytest.mark.parametrize(("doc", "memlock"), [
    ('{"default-ulimits": {"memlock": {"Name": "memlock", "Soft": -1, "Hard": -1}}}', -1),
    ('{"data-root": "/var/lib/docker", "storage-driver": "fuse-overlayfs", "mtu": 1400}', 65536),
    (None, 65536),
])
def test_daemon_json_memlock(doc, memlock):
    assert _tunables.container_memlock_default(_tunables.parse_daemon_json(doc))["bytes"] == memlock


def test_dockerd_limits_win_over_historical_default():
    dockerd = {"memlock": {"soft": 8388608, "hard": 8388608}}
    got = _tunables.container_memlock_default(_tunables.parse_daemon_json(None), dockerd)
    assert got["bytes"] == 8388608 and "dockerd" in got["source"]


def test_daemon_json_malformed():
    with pytest.raises(ProbeError, match=r"^/etc/docker/daemon.json: malformed JSON"):
        _tunables.parse_daemon_json('{"default-ulimits": ')


def test_listening_ports_recorded(tmp_path):
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/tcp").write_text(text(RECORDED / "proc/net-tcp-debian12.txt"))
    ports = _tunables.listening_ports(str(tmp_path))
    assert ports and all(isinstance(p, int) for p in ports)


def test_listening_ports_malformed(tmp_path):
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/tcp").write_text("hdr\n 0: 0100007F:ZZZZ 00000000:0000 0A\n")
    with pytest.raises(ProbeError, match=r"^/proc/net/tcp: bad local address"):
        _tunables.listening_ports(str(tmp_path))


def test_model_files_fit_tree():
    got = _tunables.model_files(str(TREES / "fit"), "/models/Qwen2.5-0.5B-Instruct")
    assert (got["exists"], got["config_json"], got["safetensors"]) == (True, True, 1)
    assert got["free_bytes"] > 0
    missing = _tunables.model_files(str(TREES / "fit"), "/models/none")
    assert missing["exists"] is False and missing["free_bytes"] > 0


def test_cpu_governors_and_clock():
    assert _tunables.cpu_governors(str(TREES / "fit"))["all"] == "performance"
    assert _tunables.clock_sync(str(TREES / "fit"))["synchronized"] is True
    assert _tunables.clock_sync(str(TREES / "fit"), "no\n")["synchronized"] is False


class _Handler(BaseHTTPRequestHandler):
    body = ""

    def do_GET(self):  # noqa: N802
        status, body = (200, self.body) if self.path == "/info" else (404, '{"message":"no"}')
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _address = super().get_request()
        return request, ("local", 0)


def test_docker_get_over_a_real_unix_socket(tmp_path):
    _Handler.body = text(RECORDED / "docker/info-20.10.24.json")
    sock = str(tmp_path / "docker.sock")
    server = _UnixHTTPServer(sock, _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, body = _tunables.docker_get(sock, "/info", 2.0)
        assert status == 200 and json.loads(body)["ServerVersion"] == "20.10.24+dfsg1"
        assert _tunables.docker_get(sock, "/nope", 2.0)[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_docker_get_no_socket(tmp_path):
    with pytest.raises(OSError):
        _tunables.docker_get(str(tmp_path / "absent.sock"), "/info", 0.5)
