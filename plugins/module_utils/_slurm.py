# Copyright (c) 2026 inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE: a Slurm allocation -> proxy/prefill/decode roles (``inferops.disagg.slurm``).

Pure logic, no Ansible objects; every error is a ``ValueError`` whose text is meant for the user.

Role assignment follows the seed's ``run_xPyD_models.slurm``: the allocation's hostnames in
``scontrol show hostnames`` order, the first ``xP + yD + 1`` are used, rank 0 is the proxy
(router), ranks ``1..xP`` prefill, ranks ``xP+1..xP+yD`` decode. With ``colocate_proxy`` the
router shares rank 0 with the first prefill server (the seed's later MoRI era) and only
``xP + yD`` nodes are needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

try:
    import hostlist as _hostlist  # python-hostlist

    HAS_HOSTLIST = True
except ImportError:  # pragma: no cover - exercised only without the dependency
    _hostlist = None
    HAS_HOSTLIST = False

__all__ = [
    "HAS_HOSTLIST",
    "Allocation",
    "assign_roles",
    "expand_nodelist",
    "parse_count",
    "parse_scontrol_hostnames",
]

# A Slurm node name: letters, digits, '-', '_', '.'; Slurm itself rejects anything else.
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_count(name: str, value: object, minimum: int = 1) -> int:
    """Parse a node count (``xP``/``yD``) given as an int or a string from the environment.

    Raises ``ValueError`` naming the variable and the bad value, e.g. ``xP must be an integer
    >= 1, got 'two'``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+]?\d+", text):
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        number = int(text)
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def _check_names(names: list[str], source: str) -> list[str]:
    """Reject empty lists, malformed names and duplicates (a node counted twice is a bug)."""
    if not names:
        raise ValueError(f"{source} is empty: no nodes in the allocation")
    seen: set[str] = set()
    for name in names:
        if not _NODE_NAME.match(name):
            raise ValueError(f"{source}: {name!r} is not a valid node name")
        if name in seen:
            raise ValueError(f"{source}: node {name!r} is listed twice")
        seen.add(name)
    return names


def expand_nodelist(nodelist: str) -> list[str]:
    """Expand a Slurm hostlist expression (``node[01-04,07]``, ``gpu-a[1-2],gpu-b3``) in order.

    Uses python-hostlist, the same grammar as Slurm's own: ranges keep their zero padding,
    several bracket groups multiply out (``r[1-2]n[1-2]``), and the order is the order written
    (Slurm's ``SLURM_JOB_NODELIST`` is already in the controller's node order).
    """
    if not HAS_HOSTLIST:
        raise ValueError("python-hostlist is not installed (pip install python-hostlist); "
                         "or set hostlist_backend: scontrol")
    text = (nodelist or "").strip()
    if not text:
        raise ValueError("the Slurm nodelist is empty (is SLURM_JOB_NODELIST set? "
                         "run inside an allocation or set the 'nodelist' option)")
    try:
        names = _hostlist.expand_hostlist(text, allow_duplicates=True)
    except _hostlist.BadHostlist as exc:
        raise ValueError(f"cannot expand Slurm nodelist {text!r}: {exc}") from exc
    return _check_names(names, f"nodelist {text!r}")


def parse_scontrol_hostnames(stdout: str, nodelist: str = "") -> list[str]:
    """Parse ``scontrol show hostnames`` output: one hostname per line, blank lines ignored."""
    names = [line.strip() for line in stdout.splitlines() if line.strip()]
    return _check_names(names, f"scontrol show hostnames {nodelist}".strip())


def scontrol_hostnames(nodelist: str, scontrol: str | None = None,
                       timeout: float = 30.0) -> list[str]:
    """Expand ``nodelist`` with the cluster's own ``scontrol show hostnames``."""
    binary = scontrol or shutil.which("scontrol")
    if not binary:
        raise ValueError("scontrol is not on PATH; use hostlist_backend: python-hostlist")
    text = (nodelist or "").strip()
    if not text:
        raise ValueError("the Slurm nodelist is empty (is SLURM_JOB_NODELIST set? "
                         "run inside an allocation or set the 'nodelist' option)")
    try:
        proc = subprocess.run([binary, "show", "hostnames", text], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"scontrol show hostnames {text!r} failed: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise ValueError(f"scontrol show hostnames {text!r} exited {proc.returncode}: {detail}")
    return parse_scontrol_hostnames(proc.stdout, text)


@dataclass(frozen=True)
class Allocation:
    """Roles of the allocation's nodes. ``rank`` is the seed's NODE_RANK for each used node."""

    proxy: str
    prefill: list[str]
    decode: list[str]
    spare: list[str] = field(default_factory=list)
    rank: dict[str, int] = field(default_factory=dict)
    colocate_proxy: bool = False

    @property
    def nodes(self) -> list[str]:
        """The nodes that get a role, in rank order (spare nodes excluded)."""
        return sorted(self.rank, key=self.rank.__getitem__)


def needed_nodes(xp: int, yd: int, colocate_proxy: bool = False) -> int:
    """How many nodes ``xP`` prefill + ``yD`` decode (+ 1 proxy unless co-located) occupy."""
    return xp + yd + (0 if colocate_proxy else 1)


def assign_roles(nodes: list[str], xp: int, yd: int, colocate_proxy: bool = False,
                 allow_spare: bool = True) -> Allocation:
    """Split the allocation into proxy / prefill / decode exactly as the seed does.

    Raises ``ValueError`` when the allocation is too small, e.g.
    ``allocation has 3 nodes; xP=2 + yD=2 + 1 proxy needs 5``; or, with ``allow_spare=False``,
    when it is larger than needed.
    """
    xp = parse_count("xP", xp)
    yd = parse_count("yD", yd)
    need = needed_nodes(xp, yd, colocate_proxy)
    have = len(nodes)
    formula = f"xP={xp} + yD={yd}" + (
        " (proxy co-located with the first prefill)" if colocate_proxy else " + 1 proxy")
    if have < need:
        raise ValueError(f"allocation has {have} node{'s' if have != 1 else ''}; "
                         f"{formula} needs {need}")
    if have > need and not allow_spare:
        raise ValueError(f"allocation has {have} nodes; {formula} needs exactly {need} "
                         f"(set allow_spare_nodes to leave {have - need} unused)")
    if colocate_proxy:
        prefill = list(nodes[0:xp])
        decode = list(nodes[xp:xp + yd])
        proxy = prefill[0]
    else:
        proxy = nodes[0]
        prefill = list(nodes[1:1 + xp])
        decode = list(nodes[1 + xp:1 + xp + yd])
    used = list(nodes[:need])
    return Allocation(proxy=proxy, prefill=prefill, decode=decode, spare=list(nodes[need:]),
                      rank={name: index for index, name in enumerate(used)},
                      colocate_proxy=colocate_proxy)
