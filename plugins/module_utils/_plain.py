# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: Ansible's tagged/lazy containers as plain JSON-able values (the
controller-side action plugins use it before writing or checking what they read)."""

from __future__ import annotations

import json
from typing import Any


def plain(value: Any) -> Any:
    """``value`` as plain dicts, lists, strings and numbers (anything else as its ``str``)."""
    return json.loads(json.dumps(value, default=str))
