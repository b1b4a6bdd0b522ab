#!/usr/bin/env python
"""Measure cold vs warm runs of ``scripts/base_image.py`` and write ``bench/reports/base_image.md``.

* cold: a forced build of a throwaway variant of the base image (the default package set plus
  one extra package, so it has its own tag and the project's real tag is never touched), once
  as by default (every ``.deb`` downloaded) and once with ``--deb-cache`` after a first
  ``--deb-cache`` run (not timed) filled the cache. The throwaway tag is removed afterwards.
* warm: the project's real base image already exists (it is built first if missing, not
  timed); each run is the full CLI (``python3 scripts/base_image.py``), which must find the tag
  and skip, well under 5 s.
* ``--print-ref``, and warm runs of ``scripts/wheelhouse.py`` and
  ``scripts/rehearsal_image.py``, for reference.

The scripts keep their caches (``.deb`` cache, locks, wheelhouse, ``images.env``) in their work
directory, never in the checkout: ``--work-dir DIR`` is passed on to every script, else they use
``$DISAGG_WORK_DIR`` or ``~/.cache/inferops-disagg`` (see ``scripts/base_image.py``).

Usage: ``python3 bench/image_build_time.py [--warm-runs 5] [--extra-package less] [--work-dir DIR]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
REPORT = REPO / "bench" / "reports" / "base_image.md"
WARM_LIMIT_S = 5.0


@dataclass(frozen=True)
class Timing:
    """One timed command: wall seconds, its stdout's last line, whether it built anything."""

    seconds: float
    output: str
    built: bool


def timed(cmd: Sequence[str]) -> Timing:
    """Run ``cmd`` (stderr echoed), fail on a non-zero exit, return its timing."""
    print(f"bench: $ {' '.join(cmd)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"bench: command failed (exit {proc.returncode}): {' '.join(cmd)}")
    lines = proc.stdout.strip().splitlines()
    built = any(word in proc.stderr for word in (": building ", ": built "))
    return Timing(seconds, lines[-1] if lines else "", built)


def warm_summary(runs: Sequence[Timing]) -> str:
    """Summarise the runs that built nothing; say how many rebuilt (inputs changed meanwhile)."""
    warm = [t.seconds for t in runs if not t.built]
    text = summary(warm) if warm else "no warm run"
    rebuilt = len(runs) - len(warm)
    if rebuilt:
        text += f"; {rebuilt} more run(s) rebuilt because src/ changed meanwhile"
    return text


def capture(cmd: Sequence[str]) -> str:
    """Return the stripped stdout of ``cmd`` (empty on failure)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def summary(values: Sequence[float]) -> str:
    """Format min / median / max seconds."""
    return (
        f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} s "
        f"(n={len(values)})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument(
        "--extra-package", default="less", help="throwaway package for the cold builds"
    )
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument(
        "--work-dir", type=Path, help="the scripts' work directory (default: theirs)"
    )
    args = parser.parse_args(argv)

    py = sys.executable
    work = ["--work-dir", str(args.work_dir)] if args.work_dir else []
    base = str(SCRIPTS / "base_image.py")
    throwaway = ["--extra-packages", args.extra_package]
    env_file = capture([py, str(SCRIPTS / "rehearsal_image.py"), "--env-file", *work])
    deb_cache = str(Path(env_file).parent / "debs") if env_file else "<work dir>/debs"

    load_before = os.getloadavg()[0]
    real_ref = timed([py, base, *work]).output  # makes sure the real image exists (not timed)
    throwaway_ref = timed([py, base, "--print-ref", *throwaway]).output
    cold_nocache = timed([py, base, "--force", *throwaway, *work])
    timed([py, base, "--force", "--deb-cache", *throwaway, *work])  # fills <work dir>/debs
    cold_cache = timed([py, base, "--force", "--deb-cache", *throwaway, *work])
    subprocess.run(["docker", "rmi", throwaway_ref], capture_output=True, check=False)

    warm = [timed([py, base, *work]) for _ in range(args.warm_runs)]
    assert all(t.output == real_ref for t in warm), "warm runs printed another ref"
    assert not any(t.built for t in warm), "a warm run built the image"
    print_ref = [timed([py, base, "--print-ref"]) for _ in range(args.warm_runs)]
    images = [py, str(SCRIPTS / "rehearsal_image.py"), *work]
    timed(images)  # brings the wheelhouse and the images up to date (not timed)
    wheel_warm = [timed([py, str(SCRIPTS / "wheelhouse.py"), *work]) for _ in range(3)]
    images_warm = [timed(images) for _ in range(3)]

    load_after = os.getloadavg()[0]
    warm_s = [t.seconds for t in warm]
    verdict = "PASS" if max(warm_s) < WARM_LIMIT_S else "FAIL"
    size = capture(["docker", "image", "inspect", "--format", "{{.Size}}", real_ref])
    docker_info = capture(
        ["docker", "info", "--format", "{{.ServerVersion}} / {{.Driver}} / {{.NCPU}} CPUs"]
    )
    mmdebstrap = capture(["mmdebstrap", "--version"])
    report = f"""# Base image build time (`scripts/base_image.py`)

Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by `python3 bench/image_build_time.py`
on {platform.machine()}, Docker engine {docker_info}, {mmdebstrap}; 1-minute load average
{load_before:.1f} at the start and {load_after:.1f} at the end (the cold figures grow with it:
mmdebstrap and `docker import` on fuse-overlayfs are CPU- and I/O-bound).

Image: `{real_ref}` ({int(size or 0) / 1e6:.0f} MB), Debian 12 bookworm minbase + the project's
package set, `mmdebstrap` then `docker import`.

| run | what happens | seconds |
|---|---|---|
| cold (default) | `--force --extra-packages {args.extra_package}`: download every package, \
mmdebstrap, docker import, tag | {cold_nocache.seconds:.1f} |
| cold, filled `.deb` cache | `--force --deb-cache --extra-packages {args.extra_package}`: same, \
`.deb` files synced in from `{deb_cache}` and back out | {cold_cache.seconds:.1f} |
| warm (min / median / max) | tag exists: one `docker image inspect`, no mmdebstrap | \
{summary(warm_s)} |
| `--print-ref` (min / median / max) | hash of the inputs only, no Docker | \
{summary([t.seconds for t in print_ref])} |

Warm requirement (< {WARM_LIMIT_S:.0f} s, no mmdebstrap): **{verdict}**.

The cold runs build a throwaway variant (`{throwaway_ref}`, removed afterwards) so the
project's real tag is never rebuilt or moved. Each time is the whole CLI run, Python start-up
included.

Related warm runs (inputs unchanged, nothing to build):

| command | min / median / max |
|---|---|
| `scripts/wheelhouse.py` | {warm_summary(wheel_warm)} |
| `scripts/rehearsal_image.py` (base + wheelhouse + the role renders the rehearsal Dockerfile + \
2 image tags checked) | \
{warm_summary(images_warm)} |
"""
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report)
    print(report)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
