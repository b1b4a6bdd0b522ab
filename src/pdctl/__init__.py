"""pdctl: preflight, deploy, benchmark, inspect and tear down a disaggregated SGLang service.

A CLI over ``ansible_runner`` (the collection's playbooks run in-process through the runner's
Python API, with live progress from its events), plus ``pdctl status`` which reads the live
cluster over HTTP. Exit codes: see :mod:`pdctl.exitcodes`.
"""

__version__ = "0.1.0"
