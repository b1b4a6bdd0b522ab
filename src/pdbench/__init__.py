"""pdbench: benchmark tooling for inferops.disagg (parse, report, compare, GSM8K, sweep points).

The parsing logic is the collection's ``plugins/module_utils/benchparse`` package, which the pip
package installs as the top-level ``benchparse`` package (``pyproject.toml``,
``[tool.setuptools.packages.find]``): the Ansible module, the filters and this CLI run the same
files. Import it as ``from benchparse import collect, parse_serving, ...``.
"""

from __future__ import annotations
