# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE to inferops.disagg: the command lines of SGLang workers and of sglang-router.

Same inputs, same list: every value is rendered to a string in a fixed order, so
community.docker.docker_container sees no change on a re-run and restarts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Profile fields rendered as "--flag value" after --tp-size, in this order.
_WORKER_FLAGS = (
    ("dp", "--dp-size"),
    ("ep", "--ep-size"),
    ("mem_fraction_static", "--mem-fraction-static"),
    ("chunked_prefill_size", "--chunked-prefill-size"),
    ("max_running_requests", "--max-running-requests"),
    ("attention_backend", "--attention-backend"),
    ("kv_cache_dtype", "--kv-cache-dtype"),
    ("quantization", "--quantization"),
)
_ROUTER_FLAGS = (
    ("host", "--host"),
    ("port", "--port"),
    ("prometheus_host", "--prometheus-host"),
    ("prometheus_port", "--prometheus-port"),
    ("policy", "--policy"),
    ("prefill_policy", "--prefill-policy"),
    ("decode_policy", "--decode-policy"),
    ("worker_startup_timeout_secs", "--worker-startup-timeout-secs"),
    ("worker_startup_check_interval", "--worker-startup-check-interval"),
    ("health_check_endpoint", "--health-check-endpoint"),
    ("health_check_interval_secs", "--health-check-interval-secs"),
    ("health_check_timeout_secs", "--health-check-timeout-secs"),
    ("health_failure_threshold", "--health-failure-threshold"),
    ("health_success_threshold", "--health-success-threshold"),
)
_ROUTER_RETRY = (
    ("retry_max_retries", "--retry-max-retries"),
    ("retry_initial_backoff_ms", "--retry-initial-backoff-ms"),
    ("retry_max_backoff_ms", "--retry-max-backoff-ms"),
    ("retry_backoff_multiplier", "--retry-backoff-multiplier"),
    ("retry_jitter_factor", "--retry-jitter-factor"),
)
_ROUTER_CB = (
    ("cb_failure_threshold", "--cb-failure-threshold"),
    ("cb_success_threshold", "--cb-success-threshold"),
    ("cb_timeout_duration_secs", "--cb-timeout-duration-secs"),
    ("cb_window_duration_secs", "--cb-window-duration-secs"),
)
_ROUTER_TAIL = (
    ("request_timeout_secs", "--request-timeout-secs"),
    ("max_concurrent_requests", "--max-concurrent-requests"),
    ("queue_size", "--queue-size"),
    ("queue_timeout_secs", "--queue-timeout-secs"),
    ("log_level", "--log-level"),
)


def text(value: Any) -> str:
    """A stable string form: booleans as true/false, everything else as Python prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flags(settings: Mapping[str, Any], table: Sequence[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for key, flag in table:
        value = settings.get(key)
        if value is not None and text(value) != "":
            out += [flag, text(value)]
    return out


def sglang_worker_args(topology: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """Arguments of ``sglang.launch_server`` for one worker.

    Args:
        topology: mode, model_path, served_model_name, host, port, transfer_backend,
            bootstrap_port, ib_devices, nnodes, node_rank, dist_init_addr, extra_args.
        settings: the model profile's section for the mode (already checked).
    """
    t = topology
    try:
        args = [
            "--model-path",
            text(t["model_path"]),
            "--served-model-name",
            text(t["served_model_name"]),
            "--host",
            text(t["host"]),
            "--port",
            text(t["port"]),
            "--disaggregation-mode",
            text(t["mode"]),
            "--disaggregation-transfer-backend",
            text(t["transfer_backend"]),
            "--disaggregation-bootstrap-port",
            text(t["bootstrap_port"]),
        ]
        if t.get("ib_devices"):
            args += ["--disaggregation-ib-device", text(t["ib_devices"])]
        args += ["--tp-size", text(settings["tp"])]
    except KeyError as exc:
        raise ValueError(f"missing {exc.args[0]}") from None
    args += _flags(settings, _WORKER_FLAGS)
    if settings.get("dp_attention"):
        args.append("--enable-dp-attention")
    nnodes = int(t.get("nnodes") or 1)
    if nnodes > 1:
        args += [
            "--nnodes",
            text(nnodes),
            "--node-rank",
            text(t["node_rank"]),
            "--dist-init-addr",
            text(t["dist_init_addr"]),
        ]
    args += [text(a) for a in settings.get("extra_args") or []]
    args += [text(a) for a in t.get("extra_args") or []]
    return args


def merge_env(*layers: Mapping[str, Any] | None) -> dict[str, str]:
    """Merge env mappings (a later layer wins) into NAME: string with the names sorted."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer or {})
    return {str(k): text(merged[k]) for k in sorted(merged)}


def kv_layout(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What prefill and decode must agree on for the KV cache: attention TP and KV dtype."""
    tp, dp = int(settings["tp"]), int(settings.get("dp") or 1)
    return {
        "attention_tp": tp // dp if settings.get("dp_attention") else tp,
        "kv_cache_dtype": text(settings.get("kv_cache_dtype") or "auto"),
    }


def router_pd_args(settings: Mapping[str, Any]) -> list[str]:
    """Arguments of ``sglang_router.launch_router --pd-disaggregation``.

    One ``--prefill URL BOOTSTRAP_PORT`` per entry of settings["prefill"] and one
    ``--decode URL`` per entry of settings["decode"], in the order given, then every setting
    explicitly (``disable_retries``/``disable_circuit_breaker`` replace their groups).
    """
    args = ["--pd-disaggregation"]
    for worker in settings["prefill"]:
        args += ["--prefill", text(worker["url"]), text(worker["bootstrap_port"])]
    for worker in settings["decode"]:
        args += ["--decode", text(worker["url"])]
    args += _flags(settings, _ROUTER_FLAGS)
    if settings.get("disable_retries"):
        args.append("--disable-retries")
    else:
        args += _flags(settings, _ROUTER_RETRY)
    if settings.get("disable_circuit_breaker"):
        args.append("--disable-circuit-breaker")
    else:
        args += _flags(settings, _ROUTER_CB)
    args += _flags(settings, _ROUTER_TAIL)
    args += [text(a) for a in settings.get("extra_args") or []]
    return args
