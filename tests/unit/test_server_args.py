"""pd_rehearsal.server_args: SGLang 0.5.2's launch_server command line, read from its source."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pd_rehearsal import server_args as sa

SERVER_ARGS_PY = sa.find_sglang_server_args()
BASE = ["--model-path", "/models/Qwen3-0.6B"]


def _options(parser):
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def _rejected(argv, capsys):
    with pytest.raises(SystemExit) as excinfo:
        sa.parse_args(argv)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m pd_rehearsal")
    return err.strip().splitlines()[-1]


# --------------------------------------------------------------------------------------------
# Flags the deployment roles emit
# --------------------------------------------------------------------------------------------

ACCEPTED = [
    # argv (after BASE)                                   dest                          value
    ([], "model_path", "/models/Qwen3-0.6B"),
    (["--model", "m"], "model_path", "m"),
    (["--host", "0.0.0.0"], "host", "0.0.0.0"),
    ([], "host", "127.0.0.1"),
    (["--port", "30001"], "port", 30001),
    ([], "port", 30000),
    (["--tp-size", "8"], "tp_size", 8),
    (["--tp-size", "8"], "tensor_parallel_size", 8),
    (["--tensor-parallel-size", "4"], "tp_size", 4),
    ([], "tp_size", 1),
    (["--pp-size", "2"], "pp_size", 2),
    (["--pp-size", "2"], "pipeline_parallel_size", 2),
    (["--dp-size", "2"], "dp_size", 2),
    (["--dp-size", "2"], "data_parallel_size", 2),
    (["--tp-size", "8", "--dp-size", "8", "--enable-dp-attention"], "enable_dp_attention", True),
    ([], "enable_dp_attention", False),
    (["--disaggregation-mode", "null"], "disaggregation_mode", "null"),
    (["--disaggregation-mode", "prefill"], "disaggregation_mode", "prefill"),
    (["--disaggregation-mode", "decode"], "disaggregation_mode", "decode"),
    ([], "disaggregation_mode", "null"),
    (["--disaggregation-transfer-backend", "nixl"], "disaggregation_transfer_backend", "nixl"),
    ([], "disaggregation_transfer_backend", "mooncake"),
    (["--disaggregation-bootstrap-port", "9000"], "disaggregation_bootstrap_port", 9000),
    ([], "disaggregation_bootstrap_port", 8998),
    (["--disaggregation-ib-device", "mlx5_0,mlx5_1"], "disaggregation_ib_device", "mlx5_0,mlx5_1"),
    ([], "disaggregation_ib_device", None),
    (["--mem-fraction-static", "0.85"], "mem_fraction_static", 0.85),
    ([], "mem_fraction_static", None),
    (["--chunked-prefill-size", "8192"], "chunked_prefill_size", 8192),
    (["--max-running-requests", "256"], "max_running_requests", 256),
    (["--trust-remote-code"], "trust_remote_code", True),
    ([], "trust_remote_code", False),
    (["--nnodes", "2", "--tp-size", "16"], "nnodes", 2),
    (["--node-rank", "1"], "node_rank", 1),
    (["--dist-init-addr", "10.0.0.1:5000"], "dist_init_addr", "10.0.0.1:5000"),
    (["--nccl-init-addr", "10.0.0.1:5000"], "dist_init_addr", "10.0.0.1:5000"),
    (["--attention-backend", "aiter"], "attention_backend", "aiter"),
    (["--kv-cache-dtype", "fp8_e4m3"], "kv_cache_dtype", "fp8_e4m3"),
    ([], "kv_cache_dtype", "auto"),
    (["--quantization", "fp8"], "quantization", "fp8"),
    (["--ep-size", "8"], "ep_size", 8),
    (["--ep", "8"], "expert_parallel_size", 8),
    (["--moe-a2a-backend", "deepep"], "moe_a2a_backend", "deepep"),
    ([], "moe_a2a_backend", "none"),
    (["--cuda-graph-max-bs", "160"], "cuda_graph_max_bs", 160),
    (["--page-size", "64"], "page_size", 64),
    ([], "page_size", None),
    (["--watchdog-timeout", "600"], "watchdog_timeout", 600.0),
    ([], "watchdog_timeout", 300),
    (["--log-level", "debug"], "log_level", "debug"),
    ([], "max_queued_requests", sys.maxsize),
    (["--quantization-param-path", "None"], "quantization_param_path", None),
    (["--quantization-param-path", "none"], "quantization_param_path", "none"),
    (["--lora-paths", "a=/x", '{"lora_name": "b", "lora_path": "/y"}'], "lora_paths",
     ["a=/x", {"lora_name": "b", "lora_path": "/y"}]),
    # rehearsal flags
    ([], "rehearsal_prefill_ms_per_1k_tokens", 40.0),
    (["--rehearsal-prefill-ms-per-1k-tokens", "12.5"], "rehearsal_prefill_ms_per_1k_tokens", 12.5),
    ([], "rehearsal_decode_ms_per_token", 8.0),
    (["--rehearsal-decode-ms-per-token", "0"], "rehearsal_decode_ms_per_token", 0.0),
    ([], "rehearsal_kv_bytes_per_token", 0),
    (["--rehearsal-kv-bytes-per-token", "114688"], "rehearsal_kv_bytes_per_token", 114688),
    ([], "rehearsal_kv_pool_mb", 512),
    (["--rehearsal-kv-pool-mb", "64"], "rehearsal_kv_pool_mb", 64),
    ([], "rehearsal_startup_seconds", 2.0),
    (["--rehearsal-startup-seconds", "0.5"], "rehearsal_startup_seconds", 0.5),
    ([], "rehearsal_fail_kv_checksum", False),
    (["--rehearsal-fail-kv-checksum"], "rehearsal_fail_kv_checksum", True),
    ([], "rehearsal_never_ready", False),
    (["--rehearsal-never-ready"], "rehearsal_never_ready", True),
]


@pytest.mark.parametrize(("argv", "dest", "value"), ACCEPTED)
def test_accepted(argv, dest, value):
    args = sa.parse_args(BASE + argv)
    assert getattr(args, dest) == value
    assert type(getattr(args, dest)) is type(value)


def test_realistic_pd_command_lines():
    prefill = sa.parse_args(
        BASE
        + "--host 0.0.0.0 --port 30000 --tp-size 8 --dp-size 8 --enable-dp-attention "
        "--disaggregation-mode prefill --disaggregation-transfer-backend mooncake "
        "--disaggregation-bootstrap-port 8998 --disaggregation-ib-device mlx5_0 "
        "--mem-fraction-static 0.8 --chunked-prefill-size 16384 --page-size 64 "
        "--attention-backend aiter --kv-cache-dtype fp8_e4m3 --quantization fp8 "
        "--ep-size 8 --moe-a2a-backend deepep --load-balance-method round_robin "
        "--trust-remote-code --watchdog-timeout 1200 --log-level info".split()
    )
    assert (prefill.tp_size, prefill.dp_size, prefill.ep_size) == (8, 8, 8)
    decode = sa.parse_args(
        BASE
        + "--tp-size 16 --dp-size 16 --enable-dp-attention --nnodes 2 --node-rank 1 "
        "--dist-init-addr 10.0.0.1:5000 --disaggregation-mode decode "
        "--prefill-round-robin-balance --cuda-graph-max-bs 128 "
        "--max-running-requests 1024 --rehearsal-kv-pool-mb 64".split()
    )
    assert (decode.nnodes, decode.node_rank, decode.disaggregation_mode) == (2, 1, "decode")


def test_sglang_parser_has_no_rehearsal_flags():
    parser = sa.sglang_parser()
    assert parser.prog == sa.SGLANG_PROG
    assert not any(o.startswith("--rehearsal") for a in _options(parser) for o in a.option_strings)
    with pytest.raises(SystemExit):
        parser.parse_args(BASE + ["--rehearsal-never-ready"])


def test_build_parser_group_and_prog():
    parser = sa.build_parser()
    assert parser.prog == "python -m pd_rehearsal"
    (group,) = [g for g in parser._action_groups if g.title == sa.REHEARSAL_GROUP_TITLE]
    assert sorted(a.dest for a in group._group_actions) == [
        "rehearsal_decode_ms_per_token",
        "rehearsal_fail_kv_checksum",
        "rehearsal_kv_bytes_per_token",
        "rehearsal_kv_pool_mb",
        "rehearsal_never_ready",
        "rehearsal_prefill_ms_per_1k_tokens",
        "rehearsal_startup_seconds",
    ]
    assert len(_options(parser)) == len(_options(sa.sglang_parser())) + 7


def test_parsers_are_fresh_objects():
    first = sa.sglang_parser()
    first.add_argument("--only-here")
    assert "--only-here" not in sa.sglang_parser()._option_string_actions


# --------------------------------------------------------------------------------------------
# The extracted parser is the whole of SGLang's, cross-checked against the source text
# --------------------------------------------------------------------------------------------


def test_option_count_matches_source():
    source = SERVER_ARGS_PY.read_text(encoding="utf-8")
    calls = re.findall(r"parser\.add_argument\(\s*\"--", source)
    assert len(calls) > 150
    assert len(_options(sa.sglang_parser())) == len(calls)


def test_every_flag_in_source_is_known():
    source = SERVER_ARGS_PY.read_text(encoding="utf-8")
    first_flags = re.findall(r"parser\.add_argument\(\s*\"(--[a-z0-9-]+)\"", source)
    known = sa.sglang_parser()._option_string_actions
    assert [f for f in first_flags if f not in known] == []


def test_choices_come_from_source_constants():
    parser = sa.sglang_parser()
    actions = parser._option_string_actions
    assert "aiter" in actions["--attention-backend"].choices
    assert "fp8" in actions["--quantization"].choices
    assert list(actions["--disaggregation-transfer-backend"].choices) == [
        "mooncake", "nixl", "ascend", "fake",
    ]
    assert "qwen3" in actions["--reasoning-parser"].choices
    assert "llama3" in actions["--tool-call-parser"].choices
    assert "all" in actions["--lora-target-modules"].choices


# --------------------------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------------------------

REJECTED = [
    (["--disaggregation-mode", "bogus"],
     "argument --disaggregation-mode: invalid choice: 'bogus' "
     "(choose from 'null', 'prefill', 'decode')"),
    (["--disaggregation-transfer-backend", "tcp"],
     "argument --disaggregation-transfer-backend: invalid choice: 'tcp' "
     "(choose from 'mooncake', 'nixl', 'ascend', 'fake')"),
    (["--kv-cache-dtype", "fp4"],
     "argument --kv-cache-dtype: invalid choice: 'fp4' "
     "(choose from 'auto', 'fp8_e5m2', 'fp8_e4m3')"),
    (["--port"], "argument --port: expected one argument"),
    (["--port", "abc"], "argument --port: invalid int value: 'abc'"),
    (["--tp-size", "two"], "argument --tensor-parallel-size/--tp-size: invalid int value: 'two'"),
    (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
    (["--rehearsal-kv-bytes-per-token", "0"],
     "argument --rehearsal-kv-bytes-per-token: must be a positive integer, got '0'"),
    (["--rehearsal-decode-ms-per-token", "-1"],
     "argument --rehearsal-decode-ms-per-token: must be a non-negative number, got '-1'"),
    (["--tp-size", "3", "--nnodes", "2"], "tp_size must be divisible by number of nodes"),
    (["--tp-size", "4", "--pp-size", "1", "--nnodes", "8"],
     "tp_size must be divisible by number of nodes"),
    (["--dp-size", "2", "--nnodes", "2", "--tp-size", "2"],
     "multi-node data parallel is not supported unless dp attention!"),
    (["--tp-size", "4", "--dp-size", "3", "--enable-dp-attention"],
     "tp_size (4) must be divisible by dp_size (3) for --enable-dp-attention"),
    (["--enable-dp-lm-head"], "Please enable dp attention when setting enable_dp_lm_head."),
    (["--disaggregation-mode", "decode", "--disaggregation-decode-tp", "2"],
     "Cannot set --disaggregation-decode-tp for the decode engine."),
    (["--disaggregation-mode", "decode", "--disaggregation-decode-dp", "2"],
     "Cannot set --disaggregation-decode-dp for the decode engine."),
    (["--disaggregation-mode", "decode", "--dp-size", "2"],
     "Prefill round robin balance is required when dp size > 1. Please make sure that the "
     "prefill instance is launched with `--load-balance-method round_robin` and "
     "`--prefill-round-robin-balance` is set for decode server."),
    (["--disaggregation-mode", "prefill", "--tp-size", "4", "--disaggregation-decode-tp", "6"],
     "Different tp size is supported only when one tp is multiple of the other. "
     "decode_tp=6, prefill_tp=4"),
    (["--disaggregation-mode", "decode", "--enable-hierarchical-cache"],
     "The arguments enable-hierarchical-cache and disable-radix-cache are mutually exclusive "
     "and cannot be used at the same time. Please use only one of them."),
    (["--chunked-prefill-size", "100", "--page-size", "64"],
     "chunked_prefill_size must be divisible by page_size"),
    (["--chunked-prefill-size", "8192", "--attention-backend", "cutlass_mla",
      "--page-size", "1", "--dp-size", "128", "--tp-size", "128", "--enable-dp-attention"],
     "chunked_prefill_size must be divisible by page_size"),
    (["--pp-size", "2", "--enable-mixed-chunk"],
     "Pipeline parallelism is not compatible with overlap schedule, speculative decoding, "
     "mixed chunked prefill."),
    (["--moe-runner-backend", "flashinfer_trtllm"],
     "modelopt_fp4 quantization is required for Flashinfer TRTLLM MoE"),
    (["--enable-flashinfer-cutlass-moe", "--quantization", "fp8"],
     "modelopt_fp4 quantization is required for Flashinfer MOE"),
    (["--base-gpu-id", "-1"], "base_gpu_id must be non-negative"),
    (["--moe-dense-tp-size", "2"], "moe_dense_tp_size only support 1 and None currently"),
    (["--tokenizer-worker-num", "0"], "Tokenizer worker num must >= 1"),
    (["--enable-lora"],
     "When no initial --lora-paths is provided, you need to specify both --max-lora-rank "
     "and --lora-target-modules for LoRA initialization."),
    (["--lora-paths", '{"lora_name": "x"}'],
     "'{\"lora_name\": \"x\"}' looks like a JSON str, but it does not contain 'lora_name' "
     "and 'lora_path' keys."),
]


@pytest.mark.parametrize(("argv", "message"), REJECTED)
def test_rejected(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("SGLANG_IS_IN_CI", raising=False)
    last = _rejected(BASE + argv, capsys)
    assert last == f"python -m pd_rehearsal: error: {message}".rstrip()


def test_missing_model_path(capsys):
    last = _rejected(["--port", "30000"], capsys)
    assert last == (
        "python -m pd_rehearsal: error: the following arguments are required: "
        "--model-path/--model"
    )


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["--tp-size", "4", "--disaggregation-mode", "prefill"], "disaggregation_decode_tp", None),
        (["--tp-size", "4", "--disaggregation-mode", "prefill",
          "--disaggregation-decode-tp", "8"], "disaggregation_decode_tp", 8),
        (["--tp-size", "16", "--pp-size", "2", "--nnodes", "4"], "pp_size", 2),
        (["--enable-dp-lm-head", "--enable-dp-attention", "--dp-size", "2", "--tp-size", "2"],
         "enable_dp_lm_head", True),
        (["--dp-size", "2", "--disaggregation-mode", "decode", "--prefill-round-robin-balance"],
         "prefill_round_robin_balance", True),
        (["--chunked-prefill-size", "-1", "--page-size", "64"], "chunked_prefill_size", -1),
        (["--enable-hierarchical-cache", "--disaggregation-mode", "prefill"],
         "enable_hierarchical_cache", True),
    ],
)
def test_valid_combinations(argv, dest, value, monkeypatch):
    monkeypatch.delenv("SGLANG_IS_IN_CI", raising=False)
    assert getattr(sa.parse_args(BASE + argv), dest) == value


def test_ci_env_skips_round_robin_requirement(monkeypatch):
    monkeypatch.setenv("SGLANG_IS_IN_CI", "true")
    args = sa.parse_args(BASE + ["--disaggregation-mode", "decode", "--dp-size", "2"])
    assert args.dp_size == 2


def test_cli_subprocess_bad_choice():
    code = (
        "from pd_rehearsal.server_args import parse_args; "
        "parse_args(['--model-path','x','--disaggregation-mode','bogus'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        "error: argument --disaggregation-mode: invalid choice: 'bogus' "
        "(choose from 'null', 'prefill', 'decode')"
    ) in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------------------------
# Reading the source: synthetic server_args.py files
# --------------------------------------------------------------------------------------------

FAKE_HEADER = """\
import argparse
import dataclasses
import json
import sys

COLOURS = ["red", "green"]


class ListAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, json.loads(values))


@dataclasses.dataclass
class ServerArgs:
    model_path: str
    port: int = 30000
    limit: int = sys.maxsize
    colour: str = "red"

    @staticmethod
    def add_cli_args(parser: argparse.ArgumentParser):
        parser.add_argument("--model-path", required=True)
        parser.add_argument("--port", type=int, default=ServerArgs.port)
        parser.add_argument("--limit", type=int, default=ServerArgs.limit)
        parser.add_argument("--colour", choices=COLOURS, default=ServerArgs.colour)
        parser.add_argument("--items", action=ListAction)
"""


def _fake(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "server_args.py"
    path.write_text(FAKE_HEADER + textwrap.indent(extra, " " * 8))
    return path


def test_synthetic_source_is_lifted(tmp_path):
    parser = sa.sglang_parser(_fake(tmp_path))
    args = parser.parse_args(["--model-path", "m", "--items", "[1, 2]"])
    assert (args.port, args.limit, args.colour, args.items) == (30000, sys.maxsize, "red", [1, 2])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('parser.add_argument("--mystery", choices=MYSTERY_CHOICES)\n',
         "`MYSTERY_CHOICES` (used by ServerArgs.add_cli_args) is an unknown name"),
        ('parser.add_argument("--x", default=ServerArgs.missing)\n',
         "`ServerArgs.missing`"),
        ('parser.add_argument("--x", default=ServerArgs.model_path)\n',
         "the field has no default"),
        ('parser.add_argument("--x", type=os.path.basename)\n',
         "`os` (used by ServerArgs.add_cli_args) is an unknown name"),
    ],
)
def test_synthetic_source_unknown_names_fail_loudly(tmp_path, extra, expected):
    with pytest.raises(sa.SGLangSourceError) as excinfo:
        sa.sglang_parser(_fake(tmp_path, extra))
    message = str(excinfo.value)
    assert expected in message
    assert "SGLang 0.5.2" in message


def test_synthetic_source_without_add_cli_args(tmp_path):
    path = tmp_path / "server_args.py"
    path.write_text("class ServerArgs:\n    port: int = 1\n")
    with pytest.raises(sa.SGLangSourceError, match="no add_cli_args"):
        sa.sglang_parser(path)


def test_missing_source_file(tmp_path):
    with pytest.raises(sa.SGLangSourceError, match="not found"):
        sa.sglang_parser(tmp_path / "nope.py")


def test_sglang_not_installed(monkeypatch):
    monkeypatch.setattr(sa.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sa.SGLangSourceError, match=r"sglang==0\.5\.2' --no-deps"):
        sa.find_sglang_server_args()


def test_sglang_is_not_imported():
    code = (
        "import sys; from pd_rehearsal.server_args import parse_args; "
        "parse_args(['--model-path', 'x']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sglang', 'torch')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
