# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Filters about the serving image: does an image's labels meet a model profile's needs.

The logic lives in module_utils (_image_labels); this wraps it for templates.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.inferops.disagg.plugins.module_utils import _image_labels


def image_label_check(labels: Any, requires: Any) -> dict[str, Any]:
    """``{{ labels | inferops.disagg.image_label_check(requires) }}``: ours, profile, problems."""
    return _image_labels.check(labels, requires)


class FilterModule:
    """Image filters."""

    def filters(self) -> dict:
        """Return the filters of this plugin."""
        return {"image_label_check": image_label_check}
