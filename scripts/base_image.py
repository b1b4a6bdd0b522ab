#!/usr/bin/env python
"""Build the project's Debian 12 (bookworm) base image from Debian's packages, locally.

The Docker engine on the project's machines has no registry, so every image starts here:
``mmdebstrap --variant=minbase --include=<packages> bookworm <tar> <mirrors>`` writes a root
file system as a tarball, and ``docker import`` turns it into an image.

The image is tagged ``inferops-base:<12 hex>``, a hash of everything that goes into it (suite,
mirrors, sorted package list, the import options and :data:`RECIPE_VERSION`). When that tag
already exists the build is skipped, so a warm run costs one ``docker image inspect``. The tag is
set only after a successful import; the tarball lives in a temporary directory that is always
removed. ``--deb-cache`` keeps the downloaded ``.deb`` files in ``<work dir>/debs`` for the next
build; it is off by default because on this machine copying them in and out of the chroot cost
more than downloading them again (see ``bench/reports/base_image.md``).

Usage::

    scripts/base_image.py                 # build if missing; prints the image ref on stdout
    scripts/base_image.py --print-ref     # the ref it would have, no build, no Docker needed
    scripts/base_image.py --extra-packages less,file --force

Progress goes to stderr, the image ref alone to stdout.

Work directory: locks, temporary root file systems and the ``.deb`` cache go to one work
directory outside the collection (:func:`work_dir`): ``--work-dir DIR``, else the environment
variable ``DISAGG_WORK_DIR``, else ``$XDG_CACHE_HOME/inferops-disagg`` or
``~/.cache/inferops-disagg`` (the default of the collection's ``disagg_work_dir``, the
``inferops.disagg.path`` lookup's ``base='cache'``). ``scripts/wheelhouse.py`` and
``scripts/rehearsal_image.py`` use the same one.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The collection root (a checkout or an installed collection); read, never written.
REPO_ROOT = Path(__file__).resolve().parents[1]
#: The environment variable that names the work directory (``--work-dir`` wins over it).
WORK_DIR_ENV = "DISAGG_WORK_DIR"

#: Bump when the recipe below changes in a way the other inputs do not show.
RECIPE_VERSION = "inferops-base/2"
REPOSITORY = "inferops-base"
SUITE = "bookworm"
VARIANT = "minbase"
MIRRORS: tuple[str, ...] = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: The project's package set. python3-venv: the rehearsal image's /opt/pd venv (ensurepip).
DEFAULT_PACKAGES: tuple[str, ...] = (
    "python3",
    "python3-venv",
    "python3-requests",
    "python3-yaml",
    "ca-certificates",
    "iproute2",
    "procps",
    "curl",
    "openssh-server",
    "sudo",
    "libibverbs1",
    "librdmacm1",
    "libnuma1",
    "liburing2",
    "libcurl4",
    "etcd-server",
    "etcd-client",
    "netbase",
)
#: Debian packages whose versions are recorded as ``io.inferops.component.<name>`` labels.
LABELLED_PACKAGES: tuple[str, ...] = ("python3", "etcd-server", "etcd-client", "openssh-server")
#: Where the image records its full package list (``name=version`` lines).
MANIFEST_PATH = "/usr/share/inferops/base-packages.txt"
ENV: tuple[tuple[str, str], ...] = (
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
)
#: Documentation is of no use in these images; leaving it out saves ~40 MB.
DPKG_OPTIONS: tuple[str, ...] = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)


class BuildError(RuntimeError):
    """A build step failed, or a tool it needs is missing (the message says how to fix it)."""


@dataclass(frozen=True)
class BaseImageResult:
    """Outcome of :func:`ensure_base_image`.

    Attributes:
        ref: The image reference, ``inferops-base:<12 hex>``.
        built: True when this call built the image, False when it already existed.
        seconds: Wall time of the call.
    """

    ref: str
    built: bool
    seconds: float


def log(message: str) -> None:
    """Write one progress line to stderr."""
    print(f"base_image: {message}", file=sys.stderr, flush=True)


def default_work_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's cache directory for the collection, as the ``inferops.disagg.path`` lookup
    gives it for ``base='cache'``: ``$XDG_CACHE_HOME/inferops-disagg``, else
    ``~/.cache/inferops-disagg``."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".cache"
    return root / "inferops-disagg"


def work_dir(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The work directory for caches and build outputs (never inside the collection).

    ``explicit`` (``--work-dir``) wins, then ``$DISAGG_WORK_DIR``, then
    :func:`default_work_dir`. The result is absolute; nothing is created here.
    """
    env = os.environ if environ is None else environ
    chosen = explicit if explicit else env.get(WORK_DIR_ENV, "")
    path = Path(chosen).expanduser() if chosen else default_work_dir(env)
    return path.absolute()


def normalize_packages(packages: Iterable[str]) -> list[str]:
    """Return the sorted, de-duplicated package names, with surrounding blanks dropped."""
    return sorted({p.strip() for p in packages if p.strip()})


def parse_package_list(text: str) -> list[str]:
    """Split a comma- or blank-separated package list (``"less,file"`` or ``"less file"``)."""
    return [p for p in text.replace(",", " ").split() if p]


def recipe(packages: Iterable[str]) -> dict[str, object]:
    """Return every input of the base image build as a JSON-serialisable mapping."""
    return {
        "recipe": RECIPE_VERSION,
        "suite": SUITE,
        "variant": VARIANT,
        "mirrors": list(MIRRORS),
        "packages": normalize_packages(packages),
        "env": [list(kv) for kv in ENV],
        "dpkg_options": list(DPKG_OPTIONS),
        "manifest": MANIFEST_PATH,
        "labelled": list(LABELLED_PACKAGES),
    }


def image_ref(packages: Iterable[str] = DEFAULT_PACKAGES) -> str:
    """Return the content-addressed image ref for ``packages`` (no Docker call)."""
    blob = json.dumps(recipe(packages), sort_keys=True, separators=(",", ":")).encode()
    return f"{REPOSITORY}:{hashlib.sha256(blob).hexdigest()[:12]}"


def require_tool(name: str, fix: str) -> str:
    """Return the path of executable ``name`` or raise :class:`BuildError` with ``fix``."""
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"`{name}` not found on PATH. Fix: {fix}")
    return path


def require_docker() -> str:
    """Return the docker CLI path, or raise with the fix when the CLI is missing."""
    return require_tool(
        "docker",
        "install the Docker CLI and engine (Debian: `apt-get install docker.io`) and start dockerd",
    )


def image_exists(ref: str) -> bool:
    """Tell whether ``ref`` names a local image; raise when the Docker engine is unreachable."""
    docker = require_docker()
    proc = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        return True
    err = proc.stderr.lower()
    if "no such image" in err or "no such object" in err:
        return False
    raise BuildError(
        f"`docker image inspect {ref}` failed: {proc.stderr.strip()}\n"
        "Fix: make sure dockerd is running and this user may use /var/run/docker.sock."
    )


def image_labels(ref: str) -> dict[str, str]:
    """Return the labels of local image ``ref`` (empty when it has none)."""
    proc = subprocess.run(
        [require_docker(), "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"`docker image inspect {ref}` failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout) or {}


@contextlib.contextmanager
def file_lock(name: str, work: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``<work dir>/locks/<name>.lock`` (serialises concurrent builds)."""
    lock_dir = (work or work_dir()) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(cmd: Sequence[str], *, what: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; its output goes to stderr. Raise :class:`BuildError` naming ``what``."""
    log(f"{what}: {shlex.join(cmd)}")
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}")
    return proc


def mmdebstrap_command(
    packages: Sequence[str], tarball: Path, workdir: Path, deb_cache: Path | None
) -> list[str]:
    """Return the mmdebstrap command line that writes the root file system to ``tarball``.

    The customize hook records ``name=version`` for every installed package in
    :data:`MANIFEST_PATH` inside the image and in ``workdir/packages.txt`` outside it.
    """
    mmdebstrap = require_tool(
        "mmdebstrap", "`apt-get install mmdebstrap` (scripts/setup.sh installs it)"
    )
    manifest_out = workdir / "packages.txt"
    query = "dpkg-query -W -f='${Package}=${Version}\\n'"
    cmd = [
        mmdebstrap,
        f"--variant={VARIANT}",
        "--format=tar",
        f"--include={','.join(packages)}",
        '--aptopt=APT::Install-Recommends "false"',
        *(f"--dpkgopt={opt}" for opt in DPKG_OPTIONS),
    ]
    if deb_cache is not None:
        # Reuse .deb files across builds (see mmdebstrap(1), "sync-in"/"sync-out").
        cmd += [
            "--skip=essential/unlink",
            f'--setup-hook=mkdir -p "$1"/var/cache/apt/archives/ {shlex.quote(str(deb_cache))}',
            f"--setup-hook=sync-in {shlex.quote(str(deb_cache))} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {shlex.quote(str(deb_cache))}",
        ]
    cmd += [
        f'--customize-hook=mkdir -p "$1"{os.path.dirname(MANIFEST_PATH)}',
        f'--customize-hook=chroot "$1" {query} | sort > "$1"{MANIFEST_PATH}',
        f'--customize-hook=cp "$1"{MANIFEST_PATH} {shlex.quote(str(manifest_out))}',
        SUITE,
        str(tarball),
        *MIRRORS,
    ]
    return cmd


def import_changes(ref: str, package_versions: dict[str, str]) -> list[str]:
    """Return the ``docker import --change`` instructions (CMD, ENV, LABEL) for the image."""
    changes = ['CMD ["/bin/bash"]', "WORKDIR /"]
    changes += [f"ENV {key}={value}" for key, value in ENV]
    labels = {
        "org.opencontainers.image.title": "inferops base (Debian 12 bookworm, mmdebstrap)",
        "org.opencontainers.image.description": "Local Debian 12 base for inferops.disagg images",
        "org.opencontainers.image.base.name": f"debian:{SUITE} ({VARIANT}, mmdebstrap)",
        # Not org.opencontainers.image.created/version: images built FROM this one would
        # inherit them and claim the base's date and version.
        "io.inferops.base.ref": ref,
        "io.inferops.base.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "io.inferops.recipe": RECIPE_VERSION,
        "io.inferops.base.manifest": MANIFEST_PATH,
    }
    for name in LABELLED_PACKAGES:
        if name in package_versions:
            labels[f"io.inferops.component.{name}"] = package_versions[name]
    changes += [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]
    return changes


def read_manifest(path: Path) -> dict[str, str]:
    """Parse a ``name=version`` manifest into a mapping (missing file: empty mapping)."""
    versions: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, version = line.partition("=")
            if sep:
                versions[name] = version
    return versions


def build(
    ref: str, packages: Sequence[str], *, deb_cache: Path | None, work: Path | None = None
) -> None:
    """Build ``ref`` from scratch: mmdebstrap into a temp dir (in the work directory ``work``),
    import, tag on success only."""
    docker = require_docker()
    work = work or work_dir()
    work.mkdir(parents=True, exist_ok=True)
    if deb_cache is not None:
        deb_cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferops-base-", dir=work) as tmp:
        workdir = Path(tmp)
        tarball = workdir / "rootfs.tar"
        started = time.monotonic()
        run(mmdebstrap_command(packages, tarball, workdir, deb_cache), what="mmdebstrap")
        size_mb = tarball.stat().st_size / 1e6
        log(f"root file system: {size_mb:.0f} MB in {time.monotonic() - started:.0f} s")
        versions = read_manifest(workdir / "packages.txt")
        cmd = [docker, "import"]
        for change in import_changes(ref, versions):
            cmd += ["--change", change]
        cmd += ["--message", f"{RECIPE_VERSION} {ref}", str(tarball)]
        log(f"docker import ({len(versions)} packages)")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"docker import failed: {proc.stderr.strip()}")
        image_id = proc.stdout.strip().splitlines()[-1]
        tarball.unlink()
        previous = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Id}}", ref],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        run([docker, "tag", image_id, ref], what="docker tag")
        if previous and previous != image_id:
            # --force moved the tag: drop the old image unless a container or child uses it.
            subprocess.run([docker, "rmi", previous], capture_output=True, check=False)


def ensure_base_image(
    extra_packages: Iterable[str] = (),
    *,
    force: bool = False,
    deb_cache: bool = False,
    work: Path | None = None,
) -> BaseImageResult:
    """Return the base image ref, building the image first when it is missing (or ``force``).

    Args:
        extra_packages: Debian packages to add to :data:`DEFAULT_PACKAGES` (changes the ref).
        force: Rebuild even when the tag exists (the tag moves to the new image).
        deb_cache: Reuse and keep downloaded ``.deb`` files in ``<work>/debs``.
        work: The work directory (locks, temporary files, ``.deb`` cache); default
            :func:`work_dir`.

    Raises:
        BuildError: a tool is missing, Docker is unreachable, or a build step failed.
    """
    started = time.monotonic()
    packages = normalize_packages([*DEFAULT_PACKAGES, *extra_packages])
    ref = image_ref(packages)
    work = work or work_dir()
    if not force and image_exists(ref):
        log(f"{ref} present, nothing to build")
        return BaseImageResult(ref, False, time.monotonic() - started)
    with file_lock(ref.replace(":", "-"), work):
        if not force and image_exists(ref):  # built by a concurrent run meanwhile
            return BaseImageResult(ref, False, time.monotonic() - started)
        log(f"building {ref} ({len(packages)} packages: {', '.join(packages)})")
        build(ref, packages, deb_cache=work / "debs" if deb_cache else None, work=work)
    seconds = time.monotonic() - started
    log(f"built {ref} in {seconds:.1f} s")
    return BaseImageResult(ref, True, seconds)


def add_work_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir`` (shared by base_image.py, wheelhouse.py and rehearsal_image.py)."""
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help=f"work directory for caches and build outputs (default: ${WORK_DIR_ENV}, else "
        "$XDG_CACHE_HOME/inferops-disagg or ~/.cache/inferops-disagg)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--print-ref", action="store_true", help="print the ref the image would have; no build"
    )
    parser.add_argument(
        "--extra-packages",
        default="",
        metavar="PKGS",
        help="comma-separated Debian packages to add to the default set (changes the ref)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    parser.add_argument(
        "--deb-cache", action="store_true", help="reuse and keep .deb files in <work dir>/debs"
    )
    add_work_dir_argument(parser)
    args = parser.parse_args(argv)
    extra = parse_package_list(args.extra_packages)
    if args.print_ref:
        print(image_ref([*DEFAULT_PACKAGES, *extra]))
        return 0
    try:
        result = ensure_base_image(
            extra, force=args.force, deb_cache=args.deb_cache, work=work_dir(args.work_dir)
        )
    except BuildError as exc:
        print(f"base_image: error: {exc}", file=sys.stderr)
        return 1
    print(result.ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
