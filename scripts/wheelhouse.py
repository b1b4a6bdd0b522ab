#!/usr/bin/env python
"""Build the offline wheelhouse that the project's images install from.

Containers on this network do not trust its TLS re-signing, so ``pip`` cannot reach PyPI from
inside an image build. Instead the controller (same CPython 3.11 ABI as Debian 12, x86_64)
downloads binary wheels for the image's platform here, and the image installs them with
``pip install --no-index --find-links``.

Layout under ``<work dir>/wheelhouse/``, where the work directory is the one
``scripts/base_image.py`` uses (``--work-dir``, else ``$DISAGG_WORK_DIR``, else
``$XDG_CACHE_HOME/inferops-disagg`` or ``~/.cache/inferops-disagg``; never the collection):

* ``deps-<hash>/``: third-party wheels; the hash covers the requirement list and pip's
  platform flags, so it is rebuilt only when those change.
* ``project-<hash>/``: ``inferops_disagg-*.whl`` built from a copy of ``pyproject.toml`` and
  ``src/``; the hash covers those files.
* ``<key>/``: the wheelhouse itself, hard links to both plus ``requirements.txt`` (install with
  dependencies), ``nodeps.txt`` (install with ``--no-deps``) and ``manifest.json``. ``<key>``
  hashes both inputs. It is written to a temp dir and renamed into place, so a directory that
  exists is complete. Older entries are removed.

Usage::

    scripts/wheelhouse.py            # prints the wheelhouse path (fast when warm)
    scripts/wheelhouse.py --key      # prints only the key
    scripts/wheelhouse.py --force    # rebuild everything
    scripts/wheelhouse.py --work-dir DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import base_image  # noqa: E402

#: The collection root: the project wheel is built from a copy of its files (read only).
REPO_ROOT = Path(__file__).resolve().parents[1]
PIP = REPO_ROOT / ".venv" / "bin" / "pip"

#: Bump when the build procedure changes in a way the inputs do not show.
RECIPE_VERSION = "inferops-wheelhouse/1"
#: Debian 12 has glibc 2.36. pip does not widen ``--platform manylinux_2_36_x86_64`` to the
#: older glibc tags (it only does so for the legacy ``manylinux2014`` names), so list them all.
GLIBC_MINOR = 36
PLATFORMS: tuple[str, ...] = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
PLATFORM_FLAGS: tuple[str, ...] = (
    "--only-binary=:all:",
    *(f"--platform={platform}" for platform in PLATFORMS),
    "--python-version=3.11",
    "--implementation=cp",
    "--abi=cp311",
    "--abi=abi3",
    "--abi=none",
)
#: Extras of pyproject.toml whose requirements go into the images.
EXTRAS: tuple[str, ...] = ("rehearsal", "stack")
#: Installed with their dependencies, besides the extras above.
EXTRA_REQUIREMENTS: tuple[str, ...] = (
    "requests>=2.31,<3",
    # sglang.bench_serving imports IPython (through sglang.utils) with Python 3.11.
    "ipython>=8,<10",
)
#: Installed WITHOUT dependencies: sglang's declared deps pull a multi-GB CUDA torch, and the
#: bench client (``sglang.bench_serving``) needs none of it.
NODEPS_REQUIREMENTS: tuple[str, ...] = ("sglang==0.5.2",)
PROJECT_DIST = "inferops_disagg"
#: Project files that go into the project wheel (besides src/).
# README.md is left out on purpose: a docs edit must not rebuild the image (a stub is written).
PROJECT_FILES: tuple[str, ...] = ("pyproject.toml", "LICENSE")


class WheelhouseError(RuntimeError):
    """pip failed, or the project's venv is missing (the message says how to fix it)."""


@dataclass(frozen=True)
class Wheelhouse:
    """A complete wheelhouse directory.

    Attributes:
        path: The directory holding the wheels, ``requirements.txt`` and ``nodeps.txt``.
        key: 16 hex digits; changes whenever an input changes (use it in image tags).
        built: True when this call built (part of) it.
    """

    path: Path
    key: str
    built: bool


def log(message: str) -> None:
    """Write one progress line to stderr."""
    print(f"wheelhouse: {message}", file=sys.stderr, flush=True)


def _digest(parts: Sequence[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def wheelhouse_root(work: Path | None = None) -> Path:
    """``<work dir>/wheelhouse``: where the wheelhouse and its parts live."""
    return (work or base_image.work_dir()) / "wheelhouse"


def requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """Return the requirements installed with dependencies: the extras plus the fixed list."""
    data = tomllib.loads(pyproject.read_text())
    optional = data.get("project", {}).get("optional-dependencies", {})
    reqs: list[str] = []
    for extra in EXTRAS:
        reqs += optional.get(extra, [])
    reqs += EXTRA_REQUIREMENTS
    return sorted(set(reqs), key=str.lower)


# The packages the images need. pdctl runs on the controller only: leaving it out keeps a pdctl
# edit from changing the rehearsal image's tag (and so restarting every rehearsal container).
IMAGE_PACKAGES = ("pd_rehearsal", "pdbench")


def project_files(root: Path = REPO_ROOT) -> list[Path]:
    """Return the files the project wheel is built from, sorted, relative to ``root``."""
    files = [Path(name) for name in PROJECT_FILES if (root / name).is_file()]
    for package in IMAGE_PACKAGES:
        files += _package_files(root, package)
    return sorted(files)


def _package_files(root: Path, package: str) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root / "src" / package):
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and not d.endswith(".egg-info")
        )
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                files.append((Path(dirpath) / name).relative_to(root))
    return files


def deps_key(reqs: Sequence[str]) -> str:
    """Hash of the third-party inputs: requirement lists, platform flags, recipe version."""
    return _digest([RECIPE_VERSION, *PLATFORM_FLAGS, "--", *reqs, "--", *NODEPS_REQUIREMENTS])


def project_key(root: Path = REPO_ROOT) -> str:
    """Hash of the project wheel's inputs: the path and content of every project file."""
    parts: list[str | bytes] = [RECIPE_VERSION]
    for rel in project_files(root):
        parts += [str(rel), (root / rel).read_bytes()]
    return _digest(parts)


def wheelhouse_key(root: Path = REPO_ROOT) -> str:
    """Return the key of the wheelhouse for the current inputs (cheap: hashes a few files)."""
    return _digest([deps_key(requirements(root / "pyproject.toml")), project_key(root)])


def pip_command() -> list[str]:
    """The checkout's venv pip (scripts/setup.sh makes it), else this interpreter's pip (an
    installed collection has no .venv)."""
    return [str(PIP)] if PIP.exists() else [sys.executable, "-m", "pip"]


def _pip(args: Sequence[str], *, what: str, quiet: bool = False) -> None:
    """Run the venv's pip; with ``quiet`` its output is shown only when it fails."""
    cmd = [*pip_command(), "--disable-pip-version-check", *args]
    log(f"{what}: {shlex.join(cmd)}")
    if quiet:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
    else:
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False)
    if proc.returncode != 0:
        raise WheelhouseError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}")


def _publish(tmp: Path, final: Path) -> None:
    """Rename a fully written temp dir into place (losing a race to another run is fine)."""
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def build_deps(reqs: Sequence[str], key: str, house_root: Path) -> Path:
    """Download the third-party wheels into ``<house_root>/deps-<key>/`` unless it exists."""
    final = house_root / f"deps-{key}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".deps-", dir=house_root))
    try:
        _pip(["download", "-q", *PLATFORM_FLAGS, "-d", str(tmp), *reqs], what="pip download")
        _pip(
            ["download", "-q", "--no-deps", *PLATFORM_FLAGS, "-d", str(tmp), *NODEPS_REQUIREMENTS],
            what="pip download --no-deps",
        )
        sdists = [p.name for p in tmp.iterdir() if not p.name.endswith(".whl")]
        if sdists:
            raise WheelhouseError(f"non-wheel files downloaded: {sdists}")
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_project(key: str, house_root: Path, root: Path = REPO_ROOT) -> Path:
    """Build the project wheel from a clean copy of its files into ``project-<key>/``."""
    final = house_root / f"project-{key}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".project-", dir=house_root))
    try:
        # Build from a copy: an in-tree build would write build/ and *.egg-info into the
        # checkout while other people edit it.
        src = tmp / "src-copy"
        for rel in project_files(root):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, src / rel)
        if not (src / "README.md").exists():  # pyproject names it; the wheel needs it
            (src / "README.md").write_text("inferops.disagg: pdctl and the rehearsal engine.\n")
        out = tmp / "out"
        _pip(
            ["wheel", "--no-deps", "-w", str(out), str(src)],
            what="pip wheel (project)",
            quiet=True,
        )
        wheels = list(out.glob(f"{PROJECT_DIST}-*.whl"))
        if len(wheels) != 1:
            raise WheelhouseError(f"expected one {PROJECT_DIST} wheel, got {wheels}")
        shutil.rmtree(src)
        _publish(out, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _prune(house_root: Path, keep: set[str]) -> None:
    for entry in house_root.iterdir():
        if entry.name not in keep and not entry.name.startswith("."):
            log(f"removing stale {entry.name}")
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()


def find_wheelhouse(work: Path | None = None) -> Path | None:
    """The complete wheelhouse of the current inputs in the work directory, or None (no build)."""
    final = wheelhouse_root(work) / wheelhouse_key()
    return final if final.is_dir() else None


def ensure_wheelhouse(
    *, force: bool = False, prune: bool = True, work: Path | None = None
) -> Wheelhouse:
    """Return the wheelhouse for the current inputs, building whatever part is missing.

    Args:
        force: Rebuild the third-party wheels and the project wheel.
        prune: Remove wheelhouse entries of other keys.
        work: The work directory (default: :func:`base_image.work_dir`); the wheelhouse is
            ``<work>/wheelhouse/<key>``.

    Raises:
        WheelhouseError: pip failed or the venv is missing.
    """
    reqs = requirements()
    dkey, pkey = deps_key(reqs), project_key()
    key = _digest([dkey, pkey])
    house_root = wheelhouse_root(work)
    final = house_root / key
    if final.is_dir() and not force:
        return Wheelhouse(final, key, False)
    house_root.mkdir(parents=True, exist_ok=True)
    if force:
        for stale in (final, house_root / f"deps-{dkey}", house_root / f"project-{pkey}"):
            shutil.rmtree(stale, ignore_errors=True)
    started = time.monotonic()
    deps = build_deps(reqs, dkey, house_root)
    project = build_project(pkey, house_root)
    tmp = Path(tempfile.mkdtemp(prefix=".wh-", dir=house_root))
    try:
        wheels: list[str] = []
        for source in (deps, project):
            for whl in sorted(source.glob("*.whl")):
                _link_or_copy(whl, tmp / whl.name)
                wheels.append(whl.name)
        project_wheel = next(w for w in wheels if w.startswith(f"{PROJECT_DIST}-"))
        (tmp / "requirements.txt").write_text("\n".join(reqs) + "\n")
        (tmp / "nodeps.txt").write_text("\n".join([*NODEPS_REQUIREMENTS, project_wheel]) + "\n")
        manifest = {
            "key": key,
            "deps_key": dkey,
            "project_key": pkey,
            "recipe": RECIPE_VERSION,
            "platform_flags": list(PLATFORM_FLAGS),
            "requirements": reqs,
            "nodeps": [*NODEPS_REQUIREMENTS, project_wheel],
            "wheels": sorted(wheels),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if prune:
        _prune(house_root, {key, deps.name, project.name})
    log(f"built {final} ({len(wheels)} wheels) in {time.monotonic() - started:.1f} s")
    return Wheelhouse(final, key, True)


def read_manifest(path: Path) -> dict[str, Any]:
    """Return the ``manifest.json`` of the wheelhouse at ``path``."""
    return json.loads((path / "manifest.json").read_text())


def wheel_version(path: Path, dist: str) -> str | None:
    """Return the version of distribution ``dist`` among the wheels in ``path`` (or None)."""
    norm = dist.lower().replace("-", "_").replace(".", "_")
    for whl in path.glob("*.whl"):
        name, _, rest = whl.name.partition("-")
        if name.lower().replace(".", "_") == norm:
            return rest.split("-", 1)[0]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", action="store_true", help="print the key only; no build")
    parser.add_argument("--force", action="store_true", help="rebuild all wheels")
    parser.add_argument("--no-prune", action="store_true", help="keep entries of other keys")
    base_image.add_work_dir_argument(parser)
    args = parser.parse_args(argv)
    if args.key:
        print(wheelhouse_key())
        return 0
    try:
        house = ensure_wheelhouse(
            force=args.force, prune=not args.no_prune, work=base_image.work_dir(args.work_dir)
        )
    except WheelhouseError as exc:
        print(f"wheelhouse: error: {exc}", file=sys.stderr)
        return 1
    print(house.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
