"""The plain-text amd-smi / rocm-smi parsers on the constructed outputs of
tests/fixtures/preflight/constructed (SOURCES.md) and on recorded outputs they must refuse."""

from __future__ import annotations

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _amdgpu, _amdgpu_text
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError

from ._preflight_helpers import DERIVED, RECORDED, text

CONSTRUCTED = RECORDED.parent / "constructed"
VRAM = 206141652992


def test_amd_smi_static_text_matches_the_json_parser():
    gpus = _amdgpu_text.parse_amd_smi_static_text(
        text(CONSTRUCTED / "amd-smi" / "static-text-6.2-2xMI300X.txt"))
    json_gpus = _amdgpu.parse_amd_smi_static(
        text(DERIVED / "amd-smi" / "static-24.6-list-8xMI300X.json"))[:2]
    keys = ("index", "product", "gfx_target", "device_id", "vram_total_bytes", "bdf",
            "numa_node", "driver_version", "source")
    assert [{k: g[k] for k in keys} for g in gpus] == [{k: g[k] for k in keys} for g in json_gpus]


def test_amd_smi_static_text_of_another_command_is_refused():
    with pytest.raises(ProbeError, match=r"^amd-smi static: GPU record 0 has none of the product"):
        _amdgpu_text.parse_amd_smi_static_text(
            text(CONSTRUCTED / "amd-smi" / "list-text-6.2-2xMI300X.txt"))


def test_amd_smi_list_text():
    gpus = _amdgpu_text.parse_amd_smi_list_text(
        text(CONSTRUCTED / "amd-smi" / "list-text-6.2-2xMI300X.txt"))
    assert [(g["index"], g["bdf"], g["node_id"]) for g in gpus] == [
        (0, "0000:0c:00.0", "2"), (1, "0000:22:00.0", "3")]


def test_amd_smi_list_text_of_static_is_refused_naming_the_command():
    doc = "GPU: 0\n    ASIC:\n        MARKET_NAME: AMD Instinct MI300X\n"
    with pytest.raises(ProbeError, match=r"^amd-smi list: GPU 0 has no BDF line"):
        _amdgpu_text.parse_amd_smi_list_text(doc)


@pytest.mark.parametrize("path", [RECORDED / "amd-smi" / "version-25.3.0-rocm-6.4.0.txt",
                                  DERIVED / "amd-smi" / "static-24.6-list-8xMI300X.json"])
def test_amd_smi_text_parsers_refuse_other_outputs_quoting_the_first_line(path):
    with pytest.raises(ProbeError) as err:
        _amdgpu_text.parse_amd_smi_static_text(text(path))
    assert f"it printed first: {text(path).splitlines()[0].strip()[:120]!r}" in str(err.value)


def test_amd_smi_text_skips_cpu_records():
    doc = ("CPU: 0\n    SMU:\n        FW_VERSION: 85.118.0\n"
           "GPU: 0\n    ASIC:\n        MARKET_NAME: AMD Instinct MI300A\n"
           "        TARGET_GRAPHICS_VERSION: gfx942\n    VRAM:\n        SIZE: 131072 MB\n")
    gpus = _amdgpu_text.parse_amd_smi_static_text(doc)
    assert [(g["product"], g["vram_total_bytes"]) for g in gpus] == [
        ("AMD Instinct MI300A", 128 * 1024**3)]


def test_rocm_smi_text_6x():
    got = _amdgpu_text.parse_rocm_smi_text(text(
        CONSTRUCTED / "rocm-smi" / "text-6.x-productname-bus-mem-numa-driver-2xMI300X.txt"))
    assert [(g["product"], g["gfx_target"], g["device_id"], g["bdf"], g["vram_total_bytes"],
             g["numa_node"]) for g in got["gpus"]] == [
        ("AMD Instinct MI300X", "gfx942", "0x74a1", "0000:0c:00.0", VRAM, 0),
        ("AMD Instinct MI300X", "gfx942", "0x74a1", "0000:22:00.0", VRAM, 0)]
    assert got["driver_version"] == "6.8.5" and got["xgmi"] is None


def test_rocm_smi_text_5x_gpu_id_and_gfx9010():
    got = _amdgpu_text.parse_rocm_smi_text(
        text(CONSTRUCTED / "rocm-smi" / "text-5.x-showid-productname-2xMI210.txt"))
    assert [(g["product"], g["gfx_target"], g["device_id"]) for g in got["gpus"]] == [
        ("AMD Instinct MI210", "gfx90a", "0x740f")] * 2


def test_rocm_smi_concise_6x():
    got = _amdgpu_text.parse_rocm_smi_text(
        text(CONSTRUCTED / "rocm-smi" / "concise-6.x-2xMI300X.txt"))
    assert [(g["index"], g["device_id"], g["product"], g["gfx_target"]) for g in got["gpus"]] == [
        (0, "0x74a1", "AMD Instinct MI300X", None), (1, "0x74a1", "AMD Instinct MI300X", None)]


def test_rocm_smi_concise_5x_has_only_indices():
    got = _amdgpu_text.parse_rocm_smi_text(
        text(CONSTRUCTED / "rocm-smi" / "concise-5.x-2xMI210.txt"))
    assert [(g["index"], g["device_id"], g["product"]) for g in got["gpus"]] == [
        (0, None, None), (1, None, None)]


@pytest.mark.parametrize(("doc", "problem"), [
    ("", "printed nothing"),
    # the real rocm-smi message of ROCm/legacy-rocm-build#4374
    ("WARNING: No JSON data to report", "it printed first: 'WARNING: No JSON data to report'"),
    (text(RECORDED / "rocm-smi" / "radeon-780m-rocm-smi-lib-6.2.4.json"), "it printed first: '{"),
])
def test_rocm_smi_text_refuses_other_outputs(doc, problem):
    with pytest.raises(ProbeError) as err:
        _amdgpu_text.parse_rocm_smi_text(doc)
    assert str(err.value).startswith("rocm-smi: ") and problem in str(err.value)


CUT_CASES = [
    (_amdgpu_text.parse_amd_smi_static_text, "amd-smi/static-text-6.2-2xMI300X.txt"),
    # amd-smi list: the fields the facts use (UUID, KFD/node/partition ids were added over
    # versions, so a record without them is not refused)
    (lambda t: [(g["index"], g["bdf"]) for g in _amdgpu_text.parse_amd_smi_list_text(t)],
     "amd-smi/list-text-6.2-2xMI300X.txt"),
    (lambda t: _amdgpu_text.parse_rocm_smi_text(t)["gpus"],
     "rocm-smi/text-6.x-productname-bus-mem-numa-driver-2xMI300X.txt"),
    (lambda t: _amdgpu_text.parse_rocm_smi_text(t)["gpus"],
     "rocm-smi/text-5.x-showid-productname-2xMI210.txt"),
    (lambda t: _amdgpu_text.parse_rocm_smi_text(t)["gpus"], "rocm-smi/concise-6.x-2xMI300X.txt"),
]


@pytest.mark.parametrize(("parse", "name"), CUT_CASES, ids=[n for _p, n in CUT_CASES])
def test_cut_outputs_are_parsed_right_or_refused(parse, name):
    """Every prefix of an output (cut at each line) gives the first GPUs exactly as the whole
    output does, or a ProbeError: never a GPU with a field silently lost."""
    whole_text = text(CONSTRUCTED / name)
    whole = parse(whole_text)
    lines = whole_text.splitlines(keepends=True)
    for end in range(len(lines)):
        try:
            got = parse("".join(lines[:end]))
        except ProbeError:
            continue
        assert got == whole[:len(got)], f"cut after line {end}"
