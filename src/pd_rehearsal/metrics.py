"""Counters and gauges of the rehearsal engine, rendered as Prometheus text and JSON."""

from __future__ import annotations

from collections.abc import Callable

COUNTERS: dict[str, str] = {
    "prompt_tokens": "Number of prefill tokens processed.",
    "generation_tokens": "Number of generation tokens produced.",
    "num_requests": "Number of requests finished.",
    "num_aborted_requests": "Number of requests that ended with an error.",
    "kv_bytes_sent": "KV bytes written to decode through Mooncake (prefill).",
    "kv_transfers_sent": "KV transfers completed to decode (prefill).",
    "kv_bytes_received": "KV bytes received through Mooncake and verified (decode).",
    "kv_transfers_received": "KV transfers received and verified (decode).",
    "kv_transfer_failures": "KV transfers that failed (either side).",
    "kv_verify_failures": "KV transfers whose bytes failed decode's verification.",
}


class Counters:
    """Monotonic counters plus gauges computed on read."""

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, by: int = 1) -> None:
        """Add ``by`` to counter ``name`` (must be a known counter)."""
        if name not in self.values:
            raise KeyError(f"unknown counter {name}")
        self.values[name] += by

    def snapshot(self) -> dict[str, float]:
        """Counters and current gauge values."""
        out: dict[str, float] = dict(self.values)
        out.update({k: fn() for k, fn in self.gauges.items()})
        return out

    def prometheus(self, labels: dict[str, str]) -> str:
        """Render in Prometheus text exposition format, `sglang:` names as SGLang does."""
        lab = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines: list[str] = []
        for name, help_text in COUNTERS.items():
            metric = f"sglang:{name}_total"
            lines += [
                f"# HELP {metric} {help_text}",
                f"# TYPE {metric} counter",
                f"{metric}{{{lab}}} {self.values[name]}",
            ]
        for name, fn in self.gauges.items():
            metric = f"sglang:{name}"
            lines += [f"# TYPE {metric} gauge", f"{metric}{{{lab}}} {fn()}"]
        return "\n".join(lines) + "\n"
