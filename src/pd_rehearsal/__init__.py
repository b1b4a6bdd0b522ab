"""Rehearsal engine: stands in for SGLang's GPU model runner on CPU (not real inference)."""

__version__ = "0.1.0"

ENGINE_NAME = "inferops.disagg rehearsal engine"
ENGINE_NOTE = (
    "Stands in for SGLang's GPU model runner on CPU: real HTTP/PD/Mooncake data path, "
    "deterministic text, NOT inference."
)
