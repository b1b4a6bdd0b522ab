#!/usr/bin/env python
"""Build the rehearsal images on top of the local Debian 12 base image.

Two images, each tagged with a hash of its inputs; a build is skipped when its tag exists:

``inferops-rehearsal:<12 hex>`` (``REHEARSAL_IMAGE``)
    The rehearsal serving image: the ``rehearsal`` profile of the image role's Dockerfile
    template (``roles/image/templates/Dockerfile.j2``), rendered by the role itself (its
    ``render.yml`` entry point, run through ``ansible-playbook``: there is one renderer, the
    role's ``ansible.builtin.template``), tagged with the first 12 hex of the rendered
    Dockerfile's sha256 (base image ref, wheelhouse key, pins and :data:`RECIPE_VERSION` are all
    in it, as labels). ``ansible-playbook playbooks/build_image.yml`` builds the same image under
    the same tag.
    A venv at ``/opt/pd`` (first in ``PATH``) holds the rehearsal engine
    (``python -m pd_rehearsal``, from the project wheel), the real sglang-router 0.3.2
    (``python -m sglang_router.launch_router``), Mooncake non-CUDA 0.3.13.post1 and the
    sglang 0.5.2 bench client (``python -m sglang.bench_serving``, installed without its CUDA
    dependencies). ``etcd``/``etcdctl`` come from the base image's Debian packages. Everything
    is installed offline from the controller's wheelhouse (``scripts/wheelhouse.py``): pip
    cannot reach PyPI from inside a container on this network.

``inferops-rehearsal-host:<12 hex>`` (``HOST_IMAGE``)
    (Tagged with a hash of base ref, Dockerfile and context files.) A container that Ansible
    reaches over SSH like a real host: ``/usr/sbin/sshd -D -e`` runs as PID 1, root logs in
    by key only, ``python3`` + ``python3-requests`` serve Ansible's modules
    (community.docker's modules talk to the Docker API over ``/var/run/docker.sock``, which
    the cluster setup mounts; no docker CLI inside). The authorized public key is given at
    ``docker run`` time, never baked in:

    * ``-e SSH_AUTHORIZED_KEYS="$(cat id_ed25519.pub)"`` (one or more ``authorized_keys``
      lines), and/or
    * ``-v /path/to/authorized_keys:/etc/inferops/authorized_keys:ro``.

    Without either the container exits at once with status 64 and says so. SSH host keys are
    generated when the container starts (each host gets its own).

After a build the image is verified (imports, ``etcd --version``; ``sshd -t`` for the host)
and only then tagged. The refs are printed on stdout as ``KEY=ref`` lines and written to
``<work dir>/images.env``.

Work directory (base image locks, wheelhouse, build contexts, ``images.env``): ``--work-dir``,
else ``$DISAGG_WORK_DIR``, else ``$XDG_CACHE_HOME/inferops-disagg`` or
``~/.cache/inferops-disagg`` (see ``scripts/base_image.py``); nothing is written into the
collection. The image role passes its ``disagg_work_dir``.

Usage::

    scripts/rehearsal_image.py            # build what is missing, print KEY=ref lines
    scripts/rehearsal_image.py --print    # print the refs the images would have; no build
    scripts/rehearsal_image.py --verify   # also re-verify images that already exist
    scripts/rehearsal_image.py --prepare-context DIR [--check]
        # for the image role: ensure base image + wheelhouse, write the rehearsal build
        # context's files (not the Dockerfile) into DIR, print the template inputs as JSON
    scripts/rehearsal_image.py --work-dir DIR ...   # another work directory
    scripts/rehearsal_image.py --env-file           # print the path of images.env
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import base_image  # noqa: E402
import wheelhouse  # noqa: E402

REPO_ROOT = base_image.REPO_ROOT

#: Bump when the recipe changes in a way the Dockerfile text does not show.
RECIPE_VERSION = "inferops-rehearsal/1"
#: The one Dockerfile source of the serving images (the image role's template); the role renders
#: it, this script never does (see :func:`render_dockerfile`).
DOCKERFILE_TEMPLATE = REPO_ROOT / "roles" / "image" / "templates" / "Dockerfile.j2"
#: The collection's name: the role that renders is ``inferops.disagg.image``.
COLLECTION = ("inferops", "disagg")
#: The playbook that runs the role's render entry point (written to a temporary directory).
RENDER_PLAYBOOK = """\
---
- name: Render the image role's Dockerfile (scripts/rehearsal_image.py)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Render the Dockerfile through the image role
      ansible.builtin.include_role:
        name: inferops.disagg.image
        tasks_from: render.yml
"""
REHEARSAL_REPOSITORY = "inferops-rehearsal"
HOST_REPOSITORY = "inferops-rehearsal-host"
VENV = "/opt/pd"
SYSTEM_PATH = dict(base_image.ENV)["PATH"]
#: Where the rehearsal host reads an authorized_keys file mounted at ``docker run`` time.
HOST_KEYS_FILE = "/etc/inferops/authorized_keys"
#: The environment variable the rehearsal host reads authorized_keys lines from.
HOST_KEYS_ENV = "SSH_AUTHORIZED_KEYS"

#: The import check of the rehearsal image (the brief's list, plus the router's Rust binding).
REHEARSAL_IMPORTS = (
    "mooncake.engine",
    "sglang_router",
    "sglang_router.launch_router",
    "pd_rehearsal",
    "sglang.bench_serving",
)


class ImageError(RuntimeError):
    """A build or verification step failed (the message names the step)."""


@dataclass
class ImageSpec:
    """One image to build: its ref, Dockerfile and the other files of its build context.

    Attributes:
        key: Name in ``images.env`` (``REHEARSAL_IMAGE``, ``HOST_IMAGE``).
        ref: ``repository:<12 hex>``, a hash of every input.
        dockerfile: The generated Dockerfile text.
        files: Extra context files, path relative to the context -> text.
        wheels: Context subdirectory -> wheel files to hard-link there.
        verify: Shell commands run in a fresh container of the image; each must exit 0.
        entrypoint: Entrypoint override for the verify commands (None: the image's).
    """

    key: str
    ref: str
    dockerfile: str
    files: dict[str, str] = field(default_factory=dict)
    wheels: dict[str, list[Path]] = field(default_factory=dict)
    verify: list[str] = field(default_factory=list)
    entrypoint: str | None = None


@dataclass(frozen=True)
class ImagesResult:
    """Outcome of :func:`ensure_images`.

    Attributes:
        refs: ``{"BASE_IMAGE": ..., "REHEARSAL_IMAGE": ..., "HOST_IMAGE": ...}``.
        built: The keys of the images this call built (the base image included).
    """

    refs: dict[str, str]
    built: tuple[str, ...]


def log(message: str) -> None:
    """Write one progress line to stderr."""
    print(f"rehearsal_image: {message}", file=sys.stderr, flush=True)


def _tag(repository: str, *parts: str) -> str:
    h = hashlib.sha256()
    for part in (RECIPE_VERSION, *parts):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part.encode())
    return f"{repository}:{h.hexdigest()[:12]}"


def _pins(reqs: Sequence[str]) -> dict[str, str]:
    """Return ``{name: version}`` for the requirements pinned with ``==``."""
    pins = {}
    for req in reqs:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)\s*", req)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _project_version() -> str:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return str(data["project"]["version"])


def _label_lines(labels: dict[str, str]) -> str:
    body = " \\\n      ".join(f"{key}={json.dumps(value)}" for key, value in labels.items())
    return f"LABEL {body}\n"


def rehearsal_components() -> dict[str, str]:
    """Return the pinned components of the rehearsal venv, ``{distribution: version}``."""
    pins = _pins([*wheelhouse.requirements(), *wheelhouse.NODEPS_REQUIREMENTS])
    components = {
        name: pins[name]
        for name in ("sglang-router", "mooncake-transfer-engine-non-cuda", "sglang")
        if name in pins
    }
    components["inferops-disagg"] = _project_version()
    return components


def images_env_path(work: Path | None = None) -> Path:
    """``<work dir>/images.env``: the ``KEY=ref`` lines of the last :func:`ensure_images`."""
    return (work or base_image.work_dir()) / "images.env"


def _ansible_playbook() -> str:
    """The ``ansible-playbook`` next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.is_file() else shutil.which("ansible-playbook")
    if not found:
        raise ImageError(
            "ansible-playbook not found: the image role renders the Dockerfile. Fix: run this "
            "script with the project's venv (.venv/bin/python, scripts/setup.sh makes it)"
        )
    return found


def render_dockerfile(variables: dict[str, Any], *, timeout: float = 300) -> str:
    """Render the Dockerfile through the image role (``tasks_from: render.yml``) and return it.

    This is the role's own code path (its defaults, its settings checks, its
    ``ansible.builtin.template`` task): ``variables`` are passed as extra vars, e.g.
    ``{"image_profile": "rehearsal", "image_rehearsal_inputs": {...}}``. The collection is made
    visible to ``ansible-playbook`` through a temporary collections directory that links to
    this script's collection root, so it works from a checkout and from an installed
    collection alike, whatever the current directory.

    Raises:
        ImageError: ansible-playbook is missing or the role refused the settings (the
            message carries the role's output).
    """
    with tempfile.TemporaryDirectory(prefix="inferops-render-") as tmp:
        tmpdir = Path(tmp)
        namespace = tmpdir / "collections" / "ansible_collections" / COLLECTION[0]
        namespace.mkdir(parents=True)
        (namespace / COLLECTION[1]).symlink_to(REPO_ROOT, target_is_directory=True)
        playbook = tmpdir / "render.yml"
        playbook.write_text(RENDER_PLAYBOOK)
        dest = tmpdir / "Dockerfile"
        extra = {
            **variables,
            "image_render_dest": str(dest),
            "ansible_python_interpreter": sys.executable,
        }
        paths = [str(tmpdir / "collections")]
        if os.environ.get("ANSIBLE_COLLECTIONS_PATH"):
            paths.append(os.environ["ANSIBLE_COLLECTIONS_PATH"])
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(paths),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }
        cmd = [_ansible_playbook(), str(playbook), "-i", "localhost,", "-c", "local",
               "-e", json.dumps(extra)]  # fmt: skip
        try:
            proc = subprocess.run(cmd, cwd=tmpdir, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ImageError(f"rendering the Dockerfile through the image role took over "
                             f"{timeout:.0f} s") from exc  # fmt: skip
        if proc.returncode != 0 or not dest.is_file():
            out = (proc.stdout + proc.stderr).strip().splitlines()
            raise ImageError("the image role did not render the Dockerfile (ansible-playbook "
                             f"exit {proc.returncode}):\n" + "\n".join(out[-25:]))  # fmt: skip
        return dest.read_text()


def rehearsal_inputs(base_ref: str, house_key: str) -> dict[str, Any]:
    """The template inputs of the rehearsal profile (``image_rehearsal_inputs``)."""
    return {
        "base_image": base_ref,
        "venv": VENV,
        "system_path": SYSTEM_PATH,
        "project_version": _project_version(),
        "recipe": RECIPE_VERSION,
        "wheelhouse_key": house_key,
        "components": rehearsal_components(),
    }


def rehearsal_dockerfile(inputs: dict[str, Any]) -> str:
    """Return the rehearsal image's Dockerfile, rendered by the image role (profile rehearsal)."""
    return render_dockerfile({"image_profile": "rehearsal", "image_rehearsal_inputs": inputs})


def content_tag(repository: str, dockerfile: str) -> str:
    """``repository:<first 12 hex of sha256(dockerfile)>``, as the image role tags it."""
    return f"{repository}:{hashlib.sha256(dockerfile.encode()).hexdigest()[:12]}"


HOST_SSHD_CONFIG = """\
# inferops rehearsal host: root by key only (drop-in, read before the Debian defaults).
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
PrintMotd no
AcceptEnv LANG LC_*
"""

HOST_ENTRYPOINT = f"""\
#!/bin/sh
# inferops rehearsal host entrypoint: install the authorized key given at `docker run` time,
# make this container's own SSH host keys, then exec sshd as PID 1.
#   -e {HOST_KEYS_ENV}="ssh-ed25519 AAAA... comment"      (one or more lines), and/or
#   -v ./authorized_keys:{HOST_KEYS_FILE}:ro
set -eu
keys="${{{HOST_KEYS_ENV}:-}}"
if [ -r {HOST_KEYS_FILE} ]; then
  keys="$keys
$(cat {HOST_KEYS_FILE})"
fi
if [ -z "$(printf '%s' "$keys" | tr -d '[:space:]')" ]; then
  echo "inferops-host: no authorized key: set {HOST_KEYS_ENV} or mount {HOST_KEYS_FILE}" >&2
  exit 64
fi
install -d -m 700 /root/.ssh
printf '%s\\n' "$keys" | sed '/^[[:space:]]*$/d' > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null
install -d -m 755 /run/sshd
exec /usr/sbin/sshd -D -e "$@"
"""


def host_dockerfile(base_ref: str) -> str:
    """Return the rehearsal host's Dockerfile (sshd as PID 1, key given at run time)."""
    labels = {
        "org.opencontainers.image.title": "inferops rehearsal host (sshd for Ansible)",
        "org.opencontainers.image.description": (
            "SSH-reachable rehearsal host: sshd as PID 1, root by key only, python3 + requests"
        ),
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.version": _project_version(),
        "org.opencontainers.image.base.name": base_ref,
        "io.inferops.recipe": RECIPE_VERSION,
        "io.inferops.host.authorized-keys-env": HOST_KEYS_ENV,
        "io.inferops.host.authorized-keys-file": HOST_KEYS_FILE,
    }
    return (
        "# Generated by scripts/rehearsal_image.py: edit the script, not this file.\n"
        f"FROM {base_ref}\n"
        "COPY sshd_config /etc/ssh/sshd_config.d/00-inferops.conf\n"
        "COPY entrypoint.sh /usr/local/sbin/inferops-host-entrypoint\n"
        "RUN rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub \\\n"
        " && chmod 0644 /etc/ssh/sshd_config.d/00-inferops.conf \\\n"
        " && chmod 0755 /usr/local/sbin/inferops-host-entrypoint \\\n"
        " && install -d -m 700 /root/.ssh && install -d -m 755 /etc/inferops /run/sshd\n"
        "EXPOSE 22\n"
        f"{_label_lines(labels)}"
        'ENTRYPOINT ["/usr/local/sbin/inferops-host-entrypoint"]\n'
        "CMD []\n"
    )


def rehearsal_context(
    house: Path, components: dict[str, str]
) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """The rehearsal build context but its Dockerfile: ``(wheels, files)`` of an
    :class:`ImageSpec`, from the built wheelhouse ``house``.

    Raises:
        ImageError: the wheelhouse's versions differ from ``components`` (the image labels).
    """
    manifest = wheelhouse.read_manifest(house)
    nodeps = [str(n) for n in manifest["nodeps"]]
    project = [house / n for n in nodeps if n.startswith(f"{wheelhouse.PROJECT_DIST}-")]
    deps = [w for w in sorted(house.glob("*.whl")) if w not in project]
    wheels = {"wheels/deps": deps, "wheels/project": project}
    files = {
        "wheels/deps/requirements.txt": (house / "requirements.txt").read_text(),
        "wheels/deps/nodeps.txt": "".join(
            f"{n}\n" for n in nodeps if not n.startswith(f"{wheelhouse.PROJECT_DIST}-")
        ),
        "wheels/project/manifest.json": (house / "manifest.json").read_text(),
    }
    for name, version in components.items():
        found = wheelhouse.wheel_version(house, name)
        if found != version:
            raise ImageError(f"wheelhouse has {name} {found}, the image labels say {version}")
    return wheels, files


def plan(base_ref: str, house_key: str, house: Path | None = None) -> list[ImageSpec]:
    """Return the two image specs for ``base_ref`` and wheelhouse ``house_key``.

    ``house`` (the built wheelhouse directory) is needed only to build, not to name the images.
    The rehearsal Dockerfile is rendered by the image role (:func:`rehearsal_dockerfile`).
    """
    inputs = rehearsal_inputs(base_ref, house_key)
    components = inputs["components"]
    rehearsal_df = rehearsal_dockerfile(inputs)
    rehearsal = ImageSpec(
        key="REHEARSAL_IMAGE",
        ref=content_tag(REHEARSAL_REPOSITORY, rehearsal_df),
        dockerfile=rehearsal_df,
        verify=[
            "python -c " + shlex.quote("import " + ", ".join(REHEARSAL_IMPORTS)),
            "etcd --version",
            "etcdctl version",
            "python -m sglang_router.launch_router --help >/dev/null",
            f'test "$(command -v python)" = {VENV}/bin/python',
        ],
    )
    if house is not None:
        rehearsal.wheels, rehearsal.files = rehearsal_context(house, components)
    host_df = host_dockerfile(base_ref)
    host_files = {"sshd_config": HOST_SSHD_CONFIG, "entrypoint.sh": HOST_ENTRYPOINT}
    host = ImageSpec(
        key="HOST_IMAGE",
        ref=_tag(HOST_REPOSITORY, base_ref, host_df, json.dumps(host_files, sort_keys=True)),
        dockerfile=host_df,
        files=host_files,
        verify=[
            "ssh-keygen -A >/dev/null && /usr/sbin/sshd -t",
            "python3 -c 'import requests, yaml'",
            'test -z "$(ls /etc/ssh/ssh_host_* 2>/dev/null)"',  # host keys are made at start
            f"grep -q {HOST_KEYS_ENV} /usr/local/sbin/inferops-host-entrypoint",
        ],
        entrypoint="/bin/sh",
    )
    return [rehearsal, host]


def _docker(args: Sequence[str], *, what: str, capture: bool = False) -> str:
    cmd = [base_image.require_docker(), *args]
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # engine 20.10, no buildx: classic builder
    if capture:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    else:
        log(f"{what}: {shlex.join(cmd)}")
        proc = subprocess.run(
            cmd, stdout=sys.stderr, stderr=sys.stderr, text=True, env=env, check=False
        )
    if proc.returncode != 0:
        detail = f"\n{proc.stdout}{proc.stderr}".rstrip() if capture else ""
        raise ImageError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}{detail}")
    return proc.stdout or ""


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    return sa.st_size == sb.st_size and a.read_bytes() == b.read_bytes()


def sync_context(
    spec: ImageSpec, context: Path, *, dockerfile: bool = True, dry_run: bool = False
) -> bool:
    """Make ``context`` hold exactly the spec's files; return whether anything changed.

    Wheels are hard-linked (copied across file systems). With ``dockerfile=False`` the
    Dockerfile is left alone (the image role writes it from the template itself). With
    ``dry_run`` nothing is written: the result says whether anything would change.
    """
    wanted: dict[Path, Path | str] = {}
    for subdir, wheels in spec.wheels.items():
        for whl in wheels:
            wanted[Path(subdir) / whl.name] = whl
    for rel, text in spec.files.items():
        wanted[Path(rel)] = text
    if dockerfile:
        wanted[Path("Dockerfile")] = spec.dockerfile
    changed = False
    if not dry_run:
        context.mkdir(parents=True, exist_ok=True)
    present = context.rglob("*") if context.is_dir() else iter(())
    for path in sorted(p for p in present if p.is_file() or p.is_symlink()):
        rel = path.relative_to(context)
        if rel not in wanted and not (rel == Path("Dockerfile") and not dockerfile):
            if not dry_run:
                path.unlink()
            changed = True
    for rel, source in wanted.items():
        dest = context / rel
        if isinstance(source, str):
            if dest.is_file() and dest.read_text() == source:
                continue
            if not dry_run:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(source)
        else:
            if _same_file(source, dest):
                continue
            if not dry_run:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.unlink(missing_ok=True)
                try:
                    os.link(source, dest)
                except OSError:
                    shutil.copy2(source, dest)
        changed = True
    return changed


def _write_context(spec: ImageSpec, context: Path) -> None:
    sync_context(spec, context)


def verify_image(spec: ImageSpec, image: str) -> None:
    """Run each of ``spec.verify`` in a fresh container of ``image``; raise on failure."""
    for check in spec.verify:
        args = ["run", "--rm", "--network", "none"]
        if spec.entrypoint:
            args += ["--entrypoint", spec.entrypoint]
            cmd = ["-c", check]
        else:
            cmd = ["bash", "-c", check]
        try:
            _docker([*args, image, *cmd], what=f"verify `{check}`", capture=True)
        except ImageError as exc:
            raise ImageError(f"{spec.key} {spec.ref} failed verification: {exc}") from exc
        log(f"verified {spec.key}: {check}")


def build_image(spec: ImageSpec, work: Path | None = None) -> None:
    """Build ``spec`` from a generated context (a temporary directory in the work directory
    ``work``), verify it, and only then tag it."""
    work = work or base_image.work_dir()
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferops-ctx-", dir=work) as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        _write_context(spec, context)
        iidfile = Path(tmp) / "iid"
        started = time.monotonic()
        _docker(
            ["build", "--rm", "--force-rm", "--iidfile", str(iidfile), str(context)],
            what=f"docker build {spec.key}",
        )
        image_id = iidfile.read_text().strip()
        log(f"{spec.key}: built {image_id[:19]} in {time.monotonic() - started:.0f} s")
    verify_image(spec, image_id)
    _docker(["tag", image_id, spec.ref], what="docker tag", capture=True)
    log(f"{spec.key}: tagged {spec.ref}")


def write_env(refs: dict[str, str], path: Path | None = None) -> None:
    """Write ``KEY=ref`` lines to ``path`` (default :func:`images_env_path`) atomically."""
    path = path or images_env_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("".join(f"{key}={ref}\n" for key, ref in refs.items()))
    tmp.replace(path)


def image_refs() -> dict[str, str]:
    """Return the refs the images have for the current inputs, without Docker or builds."""
    base_ref = base_image.image_ref()
    specs = plan(base_ref, wheelhouse.wheelhouse_key())
    return {"BASE_IMAGE": base_ref, **{spec.key: spec.ref for spec in specs}}


def ensure_images(
    *, verify: bool = False, force: bool = False, work: Path | None = None
) -> ImagesResult:
    """Build the base image, the wheelhouse and both images as needed; return their refs
    (also written to ``<work>/images.env``).

    Args:
        verify: Also verify images that already exist.
        force: Rebuild both images even when their tags exist (not the base image).
        work: The work directory (default: :func:`base_image.work_dir`).

    Raises:
        ImageError, base_image.BuildError, wheelhouse.WheelhouseError: a step failed.
    """
    work = work or base_image.work_dir()
    built: list[str] = []
    base = base_image.ensure_base_image(work=work)
    if base.built:
        built.append("BASE_IMAGE")
    house = wheelhouse.ensure_wheelhouse(work=work)
    specs = plan(base.ref, house.key, house.path)
    for spec in specs:
        if not force and base_image.image_exists(spec.ref):
            log(f"{spec.key}: {spec.ref} present, nothing to build")
            if verify:
                verify_image(spec, spec.ref)
            continue
        with base_image.file_lock(spec.ref.replace(":", "-"), work):
            if not force and base_image.image_exists(spec.ref):
                continue
            log(f"{spec.key}: building {spec.ref}")
            build_image(spec, work)
            built.append(spec.key)
    refs = {"BASE_IMAGE": base.ref, **{spec.key: spec.ref for spec in specs}}
    write_env(refs, images_env_path(work))
    return ImagesResult(refs, tuple(built))


def prepare_context(
    context: Path, *, check: bool = False, work: Path | None = None
) -> dict[str, Any]:
    """Ensure base image + wheelhouse and write the rehearsal build context into ``context``.

    Everything but the Dockerfile: the image role renders that from its template with the
    inputs returned here (``image_rehearsal_inputs``); this function renders nothing. Returns
    ``{"changed": bool, "built": [...], "image_rehearsal_inputs": {...}}``; ``changed`` is true
    when the base image or the wheelhouse was built or the context's files changed.
    With ``check`` (Ansible's check mode) nothing is built or written: the inputs are computed,
    and ``changed`` says whether the base image, the wheelhouse or the context would change.
    ``work`` is the work directory (default: :func:`base_image.work_dir`).
    """
    work = work or base_image.work_dir()
    if check:
        base_ref, house_key = base_image.image_ref(), wheelhouse.wheelhouse_key()
        inputs = rehearsal_inputs(base_ref, house_key)
        house_path = wheelhouse.find_wheelhouse(work)
        if house_path is None or not base_image.image_exists(base_ref):
            changed = True
        else:
            spec = ImageSpec(key="REHEARSAL_IMAGE", ref="", dockerfile="")
            spec.wheels, spec.files = rehearsal_context(house_path, inputs["components"])
            changed = sync_context(spec, context, dockerfile=False, dry_run=True)
        return {"changed": changed, "built": [], "image_rehearsal_inputs": inputs}
    base = base_image.ensure_base_image(work=work)
    house = wheelhouse.ensure_wheelhouse(work=work)
    inputs = rehearsal_inputs(base.ref, house.key)
    spec = ImageSpec(key="REHEARSAL_IMAGE", ref="", dockerfile="")
    spec.wheels, spec.files = rehearsal_context(house.path, inputs["components"])
    changed = sync_context(spec, context, dockerfile=False)
    return {
        "changed": changed or base.built or house.built,
        "built": ["BASE_IMAGE"] if base.built else [],
        "image_rehearsal_inputs": inputs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--print", action="store_true", help="print the refs as KEY=ref lines; no build"
    )
    parser.add_argument("--verify", action="store_true", help="verify existing images too")
    parser.add_argument("--force", action="store_true", help="rebuild both images")
    parser.add_argument(
        "--prepare-context",
        metavar="DIR",
        type=Path,
        help="for the image role: write the rehearsal build context (no Dockerfile) into DIR "
        "and print the template inputs as JSON",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="with --prepare-context: build and write nothing, only report the inputs",
    )
    parser.add_argument(
        "--dockerfile",
        choices=("rehearsal", "host"),
        help="print that image's generated Dockerfile and exit",
    )
    parser.add_argument(
        "--env-file", action="store_true", help="print the path of images.env and exit"
    )
    base_image.add_work_dir_argument(parser)
    args = parser.parse_args(argv)
    work = base_image.work_dir(args.work_dir)
    if args.env_file:
        print(images_env_path(work))
        return 0
    try:
        if args.prepare_context:
            result = prepare_context(args.prepare_context, check=args.check, work=work)
            print(json.dumps(result, sort_keys=True))
            return 0
        if args.dockerfile:
            specs = plan(base_image.image_ref(), wheelhouse.wheelhouse_key())
            print(specs[0 if args.dockerfile == "rehearsal" else 1].dockerfile, end="")
            return 0
        if args.print:
            refs = image_refs()
        else:
            refs = ensure_images(verify=args.verify, force=args.force, work=work).refs
    except (ImageError, base_image.BuildError, wheelhouse.WheelhouseError) as exc:
        print(f"rehearsal_image: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a --prepare-context or --work-dir that cannot be written
        where = f" {exc.filename}" if exc.filename else ""
        print(f"rehearsal_image: error: cannot write{where}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    for key, ref in refs.items():
        print(f"{key}={ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
