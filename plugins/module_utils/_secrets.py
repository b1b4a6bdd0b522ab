# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Which environment variables hold secrets, and their values replaced by ``***``.

The one place of the pattern (docs/secrets.md): a name is secret when it contains one of
SECRET_WORDS in any case (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD``...) or
matches one of the extra names a deployment lists in ``disagg_secret_env_names`` (exact names or
shell-style patterns such as ``HF_*``, any case). Used by the plan (``_plan.py``), the filters
that decide ``no_log`` and redact messages (``plugins/filter/secrets.py``) and the
``container_logs`` module's ``docker inspect`` copies. Runs on the controller and in modules.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MIN_TEXT_LEN", "REDACTED", "SECRET_WORDS", "is_secret", "redact_env", "redact_env_list",
           "redact_inspect", "redact_text", "secret_names"]

REDACTED = "***"

# Names of environment variables whose values are secrets: every name containing one of these
# words, in any case.
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "CREDENTIAL")
_SECRET_NAME = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
# Secret values shorter than this are redacted where they are named (an environment entry) but
# not searched for in free text, where replacing every "1" would garble it.
MIN_TEXT_LEN = 4


def _extra(extra_names: Iterable[Any] | str | None) -> list[str]:
    if extra_names is None:
        return []
    if isinstance(extra_names, str):
        extra_names = [extra_names]
    return [str(n).upper() for n in extra_names if str(n)]


def is_secret(name: Any, extra_names: Iterable[Any] | str | None = None) -> bool:
    """Whether environment variable ``name`` holds a secret: it contains a SECRET_WORDS word, or
    matches one of ``extra_names`` (names or fnmatch patterns), any case."""
    text = str(name)
    if _SECRET_NAME.search(text):
        return True
    upper = text.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in _extra(extra_names))


def secret_names(env: Mapping[str, Any] | None,
                 extra_names: Iterable[Any] | str | None = None) -> list[str]:
    """The names of ``env`` that hold secrets, sorted."""
    return sorted(str(k) for k in (env or {}) if is_secret(k, extra_names))


def redact_env(env: Mapping[str, Any] | None,
               extra_names: Iterable[Any] | str | None = None) -> dict[str, str]:
    """``env`` with the value of every secret name replaced by ``***`` (values as strings)."""
    return {str(k): (REDACTED if is_secret(k, extra_names) else str(v))
            for k, v in (env or {}).items()}


def redact_env_list(entries: Iterable[Any] | None,
                    extra_names: Iterable[Any] | str | None = None) -> list[Any]:
    """A ``NAME=value`` list (docker inspect's ``Config.Env``) with secret values as ``***``."""
    out: list[Any] = []
    for entry in entries or []:
        if isinstance(entry, str) and "=" in entry:
            name = entry.split("=", 1)[0]
            out.append(f"{name}={REDACTED}" if is_secret(name, extra_names) else entry)
        else:
            out.append(entry)
    return out


def redact_inspect(inspect: Any, extra_names: Iterable[Any] | str | None = None) -> Any:
    """A copy of a ``docker inspect`` document (a container's) with the secret values of
    ``Config.Env`` replaced by ``***``, and every other occurrence of those values too (a value
    may be repeated elsewhere, e.g. in the command)."""
    if not isinstance(inspect, Mapping):
        return inspect
    config = inspect.get("Config")
    if not isinstance(config, Mapping):
        return dict(inspect)
    env = config.get("Env") or []
    values = [e.split("=", 1)[1] for e in env
              if isinstance(e, str) and "=" in e and is_secret(e.split("=", 1)[0], extra_names)]
    out = _replace(inspect, values)
    out["Config"] = dict(out["Config"], Env=redact_env_list(env, extra_names))
    return out


def _replace(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        return {k: _replace(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, secrets) for v in value]
    return value


def redact_text(text: Any, values: Iterable[Any] | Mapping[str, Any] | None,
                extra_names: Iterable[Any] | str | None = None) -> str:
    """``text`` with every occurrence of a secret value replaced by ``***``. ``values``: the
    values themselves, or an environment mapping (then the values of its secret names). Values
    shorter than MIN_TEXT_LEN are left alone."""
    if isinstance(values, Mapping):
        values = [v for k, v in values.items() if is_secret(k, extra_names)]
    out = str(text)
    # Longest first, so a value that contains another is replaced whole.
    for value in sorted({str(v) for v in values or [] if len(str(v)) >= MIN_TEXT_LEN},
                        key=len, reverse=True):
        out = out.replace(value, REDACTED)
    return out
