"""The locally built images: Debian 12 base (mmdebstrap), rehearsal image, rehearsal host.

These build for real when the images are missing (about 4 minutes cold on 2 cores) and are
cheap when the tags exist. They need the Docker engine and, for a cold base build, mmdebstrap.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import base_image  # noqa: E402
import rehearsal_image  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.integration]


def _docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(["docker", "version"], capture_output=True, check=False, timeout=30)
    return proc.returncode == 0


if not _docker_ok():
    pytest.skip("needs a reachable Docker engine", allow_module_level=True)


def docker_run(image: str, *cmd: str, entrypoint: str | None = None) -> str:
    args = ["docker", "run", "--rm", "--network", "none"]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    proc = subprocess.run(
        [*args, image, *cmd], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def base_ref() -> str:
    return base_image.ensure_base_image().ref


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    return rehearsal_image.ensure_images().refs


def test_base_image_contains_python3(base_ref):
    assert base_ref == base_image.image_ref()
    assert base_ref.startswith("inferops-base:") and len(base_ref.split(":")[1]) == 12
    out = docker_run(base_ref, "python3", "-c", "import sys, requests, yaml; print(sys.version)")
    assert out.startswith("3.11."), out
    labels = base_image.image_labels(base_ref)
    assert labels["io.inferops.recipe"] == base_image.RECIPE_VERSION
    assert labels["io.inferops.component.etcd-server"].startswith("3.")


def test_base_image_second_call_is_a_skip(base_ref):
    again = base_image.ensure_base_image()
    assert again.ref == base_ref
    assert again.built is False


def test_base_print_ref_needs_no_build(base_ref):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "base_image.py"), "--print-ref"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == base_ref
    # Any input change gives another tag.
    assert base_image.image_ref([*base_image.DEFAULT_PACKAGES, "less"]) != base_ref


def test_rehearsal_image_imports_components(images):
    ref = images["REHEARSAL_IMAGE"]
    assert ref.startswith("inferops-rehearsal:")
    check = "import mooncake.engine, sglang_router, pd_rehearsal, sglang.bench_serving"
    docker_run(ref, "python", "-c", check)
    assert "etcd Version: 3." in docker_run(ref, "etcd", "--version")
    assert "etcdctl version: 3." in docker_run(ref, "etcdctl", "version")
    assert docker_run(ref, "sh", "-c", "command -v python").strip() == "/opt/pd/bin/python"
    labels = base_image.image_labels(ref)
    assert labels["io.inferops.component.sglang-router"] == "0.3.2"
    assert labels["io.inferops.component.mooncake-transfer-engine-non-cuda"] == "0.3.13.post1"
    assert labels["io.inferops.component.sglang"] == "0.5.2"
    assert "io.inferops.component.etcd-server" in labels


def test_refs_are_stable_and_written(images):
    assert rehearsal_image.image_refs() == images
    env_file = rehearsal_image.images_env_path()
    assert not env_file.resolve().is_relative_to(REPO.resolve())  # the work dir, not the checkout
    env = env_file.read_text()
    for key, ref in images.items():
        assert f"{key}={ref}\n" in env
    again = rehearsal_image.ensure_images()
    assert again.refs == images and again.built == ()


@pytest.fixture
def host_container(images, tmp_path) -> Iterator[tuple[int, Path]]:
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs the OpenSSH client (apt-get install openssh-client)")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = f"inferops-test-host-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "docker", "run", "-d", "--name", name, "-p", "127.0.0.1::22",
            "-e", f"SSH_AUTHORIZED_KEYS={key.with_suffix('.pub').read_text().strip()}",
            images["HOST_IMAGE"],
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        port_out = subprocess.run(
            ["docker", "port", name, "22/tcp"], capture_output=True, text=True, check=True
        ).stdout
        port = int(port_out.splitlines()[0].rsplit(":", 1)[1])
        yield port, key
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def _ssh(port: int, key: Path | None, command: str) -> subprocess.CompletedProcess[str]:
    args = [
        "ssh", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    args += ["-i", str(key)] if key else ["-o", "PubkeyAuthentication=no"]
    return subprocess.run(
        [*args, "root@127.0.0.1", command], capture_output=True, text=True, check=False, timeout=30
    )


def test_host_image_sshd_by_key_only(host_container):
    port, key = host_container
    deadline = time.monotonic() + 30
    while True:
        proc = _ssh(port, key, "readlink /proc/1/exe; python3 -c 'import requests'")
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "/usr/sbin/sshd", proc.stdout  # sshd is PID 1
    assert _ssh(port, None, "true").returncode != 0  # no password / keyboard-interactive login


def test_host_image_refuses_to_start_without_key(images):
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", images["HOST_IMAGE"]],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 64
    assert "SSH_AUTHORIZED_KEYS" in proc.stderr
