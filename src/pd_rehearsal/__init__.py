"""Rehearsal engine: stands in for SGLang's GPU model runner on CPU (not real inference)."""

__version__ = "0.1.0"
