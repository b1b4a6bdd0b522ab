# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: does an image's labels meet a model profile's ``requires``?

The image role (``roles/image``) puts one ``io.inferops.component.<name>=<version>`` label per
pinned component on every image it builds, and ``io.inferops.profile`` (rocm or rehearsal). A
model profile's optional ``requires`` section (models/README.md) maps component names to
version specifiers; ``check`` compares the two and returns one message per unmet need, each
naming the component, the label it read and what was wanted.

Specifiers: ``any`` (the component must be there), a bare value or ``==V`` (exact pin), or
comma-separated clauses of ``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<`` (e.g. ``>=0.5.2,<0.6``).
Versions are compared the PEP 440 way (``0.5.2rc1 < 0.5.2 < 0.5.2.post1``); a Debian package
version (``1:3.4.23-4+b4``) compares by its upstream part and revision. Only stdlib code here.
"""

from __future__ import annotations

import re
from typing import Any

#: Prefix of the component labels the image role writes.
COMPONENT_PREFIX = "io.inferops.component."
#: Label naming the image role's profile (rocm, rehearsal).
PROFILE_LABEL = "io.inferops.profile"
#: The specifier that only asks for the component to be in the image.
ANY = "any"

#: Components whose label is named differently in one of the profiles: name in ``requires`` ->
#: labels (without the prefix) that provide it, in order. ``members`` labels hold a
#: comma-separated list of package names (no versions): only ``any`` can be checked there.
PROVIDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "mooncake": (("mooncake", "version"), ("mooncake-transfer-engine-non-cuda", "version")),
    "etcd": (("etcd", "version"), ("etcd-server", "version")),
    "rdma-core": (("rdma-core", "version"), ("rdma-packages", "members")),
}

_OPERATORS = ("==", "!=", ">=", "<=", ">", "<")
_CLAUSE = re.compile(r"\s*(==|!=|>=|<=|>|<)?\s*([A-Za-z0-9][A-Za-z0-9._:+~-]*)\s*")
_COMPONENT = re.compile(r"[a-z0-9][a-z0-9._-]*")
_VERSION = re.compile(
    r"""
    v?(?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>[0-9]*))?
    (?:(?:[-_.]?(?:post|rev|r)[-_.]?(?P<post_n>[0-9]*))|(?:-(?P<post_rev>[0-9]+)))?
    (?:[-_.]?dev[-_.]?(?P<dev_n>[0-9]*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_ORDER = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}

VersionKey = tuple[tuple[int, ...], tuple[int, int], int, int]


def version_key(value: str) -> VersionKey | None:
    """Return a sort key for a version string, or None when it is not a version.

    The key orders releases the PEP 440 way: dev < pre-releases (a < b < rc) < release <
    post-releases. A Debian epoch (``1:``) and local part (``+b4``) are ignored.
    """
    text = str(value).strip()
    text = re.sub(r"^[0-9]+:", "", text)
    text = text.split("+", 1)[0]
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    release = tuple(int(part) for part in match.group("release").split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre_name = match.group("pre")
    dev_n = match.group("dev_n")
    post_n = match.group("post_n")
    post_rev = match.group("post_rev")
    has_post = post_n is not None or post_rev is not None
    if pre_name is not None:
        pre = (_PRE_ORDER[pre_name.lower()], int(match.group("pre_n") or 0))
    elif dev_n is not None and not has_post:
        pre = (-1, 0)  # 1.0.dev1 sorts before 1.0a1
    else:
        pre = (3, 0)  # a final release
    post = int(post_n or post_rev or 0) if has_post else -1
    dev = int(dev_n or 0) if dev_n is not None else 2**31
    return (release, pre, post, dev)


def parse_spec(spec: Any) -> list[tuple[str, str]]:
    """Parse a specifier into ``(operator, value)`` clauses; ``any`` gives ``[]``.

    Raises ValueError naming what is wrong (not a string, empty, a bad clause, a range on a
    value that is not a version).
    """
    if not isinstance(spec, str):
        raise ValueError(
            f"expected a string such as 'any', '0.5.2' or '>=0.5.2' (quote numbers), got {spec!r}"
        )
    if spec.strip().lower() == ANY:
        return []
    clauses: list[tuple[str, str]] = []
    for part in spec.split(","):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise ValueError(
                f"bad clause {part.strip()!r} in {spec!r}: expected 'any', a version, or "
                f"comma-separated {' '.join(_OPERATORS)} clauses such as '>=0.5.2,<0.6'"
            )
        operator = match.group(1) or "=="
        value = match.group(2)
        if operator not in ("==", "!=") and version_key(value) is None:
            raise ValueError(f"{operator}{value} in {spec!r}: {value!r} is not a version")
        clauses.append((operator, value))
    return clauses


def spec_error(spec: Any) -> str | None:
    """Return why ``spec`` is not a valid specifier, or None when it is."""
    try:
        parse_spec(spec)
    except ValueError as exc:
        return str(exc)
    return None


def _clause_met(have: str, operator: str, want: str) -> bool:
    """Whether the label value ``have`` satisfies one clause (versions, else plain text)."""
    have_key, want_key = version_key(have), version_key(want)
    if have_key is None or want_key is None:
        if operator == "==":
            return have.strip() == want.strip()
        if operator == "!=":
            return have.strip() != want.strip()
        return False
    if operator == "==":
        return have_key == want_key
    if operator == "!=":
        return have_key != want_key
    if operator == ">=":
        return have_key >= want_key
    if operator == "<=":
        return have_key <= want_key
    if operator == ">":
        return have_key > want_key
    return have_key < want_key


def _find(labels: dict[str, str], component: str) -> tuple[str, str, str] | None:
    """Return ``(label, kind, value)`` of the label that provides ``component``, if any."""
    providers = PROVIDERS.get(component, ((component, "version"),))
    for name, kind in providers:
        label = COMPONENT_PREFIX + name
        if label not in labels:
            continue
        value = str(labels[label])
        if kind == "members":
            if component in [item.strip() for item in value.split(",")]:
                return label, kind, component
            continue
        return label, kind, value
    return None


def _labels_tried(component: str) -> str:
    providers = PROVIDERS.get(component, ((component, "version"),))
    return " or ".join(COMPONENT_PREFIX + name for name, _kind in providers)


def check(labels: Any, requires: Any) -> dict[str, Any]:
    """Compare an image's labels with ``requires`` (component -> specifier).

    Returns ``{'ours': bool, 'profile': str, 'problems': [str], 'met': [str]}``: ``ours`` is
    whether the image carries the image role's labels at all (a foreign image, e.g. the
    upstream ``lmsysorg/sglang`` one, has none and every need is a problem), ``problems`` one
    line per unmet need naming the component, the label and the values, ``met`` one
    ``component label=value`` line per need met.
    """
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    ours = PROFILE_LABEL in labels or any(k.startswith(COMPONENT_PREFIX) for k in labels)
    problems: list[str] = []
    met: list[str] = []
    for component in sorted(requires or {}):
        spec = (requires or {})[component]
        error = spec_error(spec)
        if error is not None:
            problems.append(f"{component}: bad requirement: {error}")
            continue
        found = _find(labels, component)
        if found is None:
            problems.append(f"{component} {spec}: missing label {_labels_tried(component)}")
            continue
        label, kind, value = found
        clauses = parse_spec(spec)
        if kind == "members" and clauses:
            problems.append(
                f"{component} {spec}: label {label} lists {component} without a version; only "
                f"'{ANY}' can be checked"
            )
            continue
        unmet = [f"{op}{want}" for op, want in clauses if not _clause_met(value, op, want)]
        if unmet:
            problems.append(
                f"{component} {spec}: label {label}={value} does not meet {','.join(unmet)}"
            )
        else:
            met.append(f"{component} {label}={value}")
    return {
        "ours": ours,
        "profile": labels.get(PROFILE_LABEL, ""),
        "problems": problems,
        "met": met,
    }
