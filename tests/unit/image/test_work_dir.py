"""The image scripts' one work directory: outside the collection, same default as the lookup.

scripts/base_image.py, scripts/wheelhouse.py and scripts/rehearsal_image.py keep their caches and
build outputs (locks, ``.deb`` cache, wheelhouse, build contexts, ``images.env``) in one work
directory: ``--work-dir``, else ``$DISAGG_WORK_DIR``, else the default of the collection's
``disagg_work_dir`` (``lookup('inferops.disagg.path', '', base='cache')``). The role passes its
``disagg_work_dir`` to the prepare command.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))

import base_image  # noqa: E402
import rehearsal_image  # noqa: E402
import wheelhouse  # noqa: E402


def _lookup_module():
    spec = importlib.util.spec_from_file_location(
        "inferops_path_lookup", REPO / "plugins" / "lookup" / "path.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "environ",
    [{"HOME": "/home/u"}, {"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"}],
    ids=["home", "xdg"],
)
def test_default_is_the_lookups_cache_base(environ):
    lookup = _lookup_module()
    assert base_image.default_work_dir(environ) == lookup.base_dir("cache", environ)
    assert base_image.work_dir(None, environ) == lookup.base_dir("cache", environ)


def test_explicit_beats_environment_beats_default(tmp_path):
    env = {"HOME": "/home/u", "DISAGG_WORK_DIR": str(tmp_path / "env")}
    assert base_image.work_dir(None, env) == tmp_path / "env"
    assert base_image.work_dir(tmp_path / "cli", env) == tmp_path / "cli"
    assert base_image.work_dir("", {"HOME": "/home/u"}) == Path("/home/u/.cache/inferops-disagg")
    assert base_image.work_dir("~/w", {"HOME": "/home/u"}).is_absolute()


def test_outputs_live_in_the_work_dir_not_the_collection(tmp_path):
    assert wheelhouse.wheelhouse_root(tmp_path) == tmp_path / "wheelhouse"
    assert rehearsal_image.images_env_path(tmp_path) == tmp_path / "images.env"
    for module in (base_image, wheelhouse, rehearsal_image):
        assert not hasattr(module, "CACHE_DIR"), module.__name__
    assert not hasattr(wheelhouse, "WHEELHOUSE_ROOT")
    assert not hasattr(rehearsal_image, "IMAGES_ENV")


def test_cli_work_dir_option(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "rehearsal_image.py"), "--env-file",
         "--work-dir", str(tmp_path / "w")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == str(tmp_path / "w" / "images.env")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DISAGG_WORK_DIR": str(tmp_path / "e")}
    env_default = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "rehearsal_image.py"), "--env-file"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    assert env_default.stdout.strip() == str(tmp_path / "e" / "images.env")


def test_prepare_context_check_writes_nothing(tmp_path):
    """--prepare-context --check (the role's check mode) computes the inputs, writes nothing."""
    context, work = tmp_path / "ctx", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "rehearsal_image.py"),
         "--prepare-context", str(context), "--check", "--work-dir", str(work)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["changed"] is True  # an empty work directory: the wheelhouse would be built
    assert result["image_rehearsal_inputs"]["wheelhouse_key"] == wheelhouse.wheelhouse_key()
    assert result["image_rehearsal_inputs"]["base_image"] == base_image.image_ref()
    assert "ref" not in result  # the script renders nothing: the role names the image
    assert not context.exists() and not work.exists()


def test_role_passes_its_work_dir_and_builds_outside_the_collection():
    defaults = yaml.safe_load((REPO / "roles/image/defaults/main.yml").read_text())
    command = defaults["image_rehearsal_prepare_command"]
    assert command[command.index("--work-dir") + 1].startswith("{{ disagg_work_dir")
    assert "lookup('inferops.disagg.path', 'scripts/rehearsal_image.py')" in command[1]
    for key in ("image_build_dir", "image_archive_dir"):
        assert defaults[key].startswith("{{ disagg_work_dir"), key
    for path in (REPO / "roles" / "image").rglob("*.yml"):
        text = path.read_text()
        assert "/../.." not in text and "role_path" not in text, path
        assert "image_runs_dir" not in text and "image_run_id" not in text, path
