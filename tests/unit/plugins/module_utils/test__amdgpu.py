"""Tables for the AMD GPU parsers: amd-smi (list / gpu_data / string units), rocm-smi, sysfs."""

from __future__ import annotations

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _amdgpu
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError, to_bytes

from ._preflight_helpers import DERIVED, RECORDED, TREES, text

CONSTRUCTED = RECORDED.parent / "constructed"

MI300X_BDFS = ["0000:0c:00.0", "0000:22:00.0", "0000:38:00.0", "0000:5c:00.0",
               "0000:9f:00.0", "0000:af:00.0", "0000:bf:00.0", "0000:df:00.0"]
VRAM = 206141652992


@pytest.mark.parametrize("name", [
    "static-24.6-list-8xMI300X.json",       # amd-smi < 26: a list of GPU objects
    "static-26-gpu_data-8xMI300X.json",     # amd-smi >= 26: {"gpu_data": [...]}
    "static-string-units-8xMI300X.json",    # sizes as "196592 MB" strings
])
def test_amd_smi_static_versions(name):
    gpus = _amdgpu.parse_amd_smi_static(text(DERIVED / "amd-smi" / name))
    assert [g["bdf"] for g in gpus] == MI300X_BDFS
    assert {g["product"] for g in gpus} == {"AMD Instinct MI300X"}
    assert {g["gfx_target"] for g in gpus} == {"gfx942"}
    assert {g["vram_total_bytes"] for g in gpus} == {VRAM}
    assert [g["numa_node"] for g in gpus] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {g["driver_version"] for g in gpus} == {"6.8.5"}


NA_CASES = [
    # every field "N/A": nothing invented
    ('[{"gpu": 0, "asic": "N/A", "bus": {"bdf": "N/A"}, "vram": {"size": "N/A"},'
     ' "numa": {"node": "N/A"}, "driver": {"version": "N/A"}}]',
     {"product": None, "bdf": None, "vram_total_bytes": None, "numa_node": None,
      "driver_version": None, "gfx_target": None}),
    # value dict holding N/A (seen in amd-smi metric output of 25.x)
    ('{"gpu_data": [{"gpu": 3, "asic": {"market_name": "N/A", "target_graphics_version": "N/A"},'
     ' "board": {"product_name": "AMD Instinct MI300X OAM"},'
     ' "vram": {"size": {"value": "N/A", "unit": "MB"}}}]}',
     {"index": 3, "product": "AMD Instinct MI300X OAM", "vram_total_bytes": None}),
    # a single GPU object (amd-smi static -g 0 --json on some versions)
    ('{"gpu": 0, "asic": {"market_name": "AMD Instinct MI300X",'
     ' "target_graphics_version": "gfx942"},'
     ' "vram": {"size": {"value": 192, "unit": "GB"}}, "bus": {"bdf": "0C:00.0"}}',
     {"product": "AMD Instinct MI300X", "vram_total_bytes": 192 * 1024**3,
      "bdf": "0000:0c:00.0"}),
    # numeric gfx target as KFD writes it
    ('[{"gpu": 0, "asic": {"target_graphics_version": 90402}, "vram": {"vram_size": 196592}}]',
     {"gfx_target": "gfx942", "vram_total_bytes": VRAM}),
]


@pytest.mark.parametrize(("doc", "expected"), NA_CASES)
def test_amd_smi_static_na_and_shapes(doc, expected):
    gpu = _amdgpu.parse_amd_smi_static(doc)[0]
    for key, value in expected.items():
        assert gpu[key] == value, key


MALFORMED_STATIC = [
    (text(DERIVED / "amd-smi" / "static-truncated.json"), "malformed JSON"),
    ("", "printed nothing"),
    ("ERROR:root:Unable to detect any GPU devices", "not JSON"),
    ('{"error": "AMDSMI_STATUS_NOT_INIT"}', "gpu_data"),
    ('["card0", "card1"]', "not an object"),
    ('{"gpu_data": {"gpu": 0}}', "expected a list"),
    ('[{"gpu": 0, "vram": {"size": "lots"}}]', "expected a size"),
    ('[{"gpu": 0, "vram": {"size": {"value": 1, "unit": "parsecs"}}}]', "unknown size unit"),
]


@pytest.mark.parametrize(("doc", "problem"), MALFORMED_STATIC)
def test_amd_smi_static_malformed(doc, problem):
    with pytest.raises(ProbeError) as err:
        _amdgpu.parse_amd_smi_static(doc)
    msg = str(err.value)
    assert msg.startswith("amd-smi static --json: ")
    assert problem in msg
    assert "(check gpu.facts)" in msg and "fix: " in msg


VERSION_CASES = [
    (RECORDED / "amd-smi" / "version-25.3.0-rocm-6.4.0.txt",
     {"amd_smi": "25.3.0+ede62f2", "amdsmi_library": "25.3.0", "rocm": "6.4.0"}),
    (RECORDED / "amd-smi" / "version-23.4.2-rocm-6.1.0.txt",
     {"amd_smi": "23.4.2+505b858", "amdsmi_library": "24.2.0.0", "rocm": "6.1.0", "driver": None}),
    (DERIVED / "amd-smi" / "version-24.6.3.json",
     {"amd_smi": "24.6.3+9578815", "amdsmi_library": "24.6.3.0", "rocm": "6.2.2"}),
    (DERIVED / "amd-smi" / "version-26-list.json",
     {"amd_smi": "26.0.0+37d158ab", "amdsmi_library": "26.0.0", "rocm": "6.2.2"}),
]


@pytest.mark.parametrize(("path", "expected"), VERSION_CASES, ids=lambda p: getattr(p, "name", ""))
def test_amd_smi_version(path, expected):
    got = _amdgpu.parse_amd_smi_version(text(path))
    for key, value in expected.items():
        assert got[key] == value, key


def test_amd_smi_version_inbox_driver_banner_is_reported_as_such():
    """Recorded (ROCm/k8s-device-plugin#157): "amdgpu version" holds the kernel banner."""
    got = _amdgpu.parse_amd_smi_version(text(RECORDED / "amd-smi/version-25.3.0-rocm-6.4.0.txt"))
    assert got["driver"] == "inbox kernel driver (6.8.0-79-generic)"


@pytest.mark.parametrize(("value", "expected"), [
    # the banner with its spaces (as /proc/version prints it)
    ("Linux version 6.8.0-79-generic (buildd@lcy02-amd64-049) (x86_64-linux-gnu-gcc-13 "
     "(Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0) #79-Ubuntu SMP PREEMPT_DYNAMIC",
     "inbox kernel driver (6.8.0-79-generic)"),
    ("6.8.5", "6.8.5"),
    ("6.10.5-2084815.24.04", "6.10.5-2084815.24.04"),
    ("Linux", "inbox kernel driver (kernel release not printed)"),
    ("N/A", None),
    ("amdgpu-dkms built from git", "unrecognized: 'amdgpu-dkms built from git'"),
])
def test_driver_version_text(value, expected):
    assert _amdgpu.driver_version_text(value) == expected


def test_amd_smi_version_json_banner():
    doc = '{"tool": "AMDSMI Tool", "version": "25.3.0+ede62f2", "rocm_version": "6.4.0", ' \
          '"amdgpu_version": "Linux version 6.8.0-79-generic (buildd@lcy02) #79-Ubuntu"}'
    assert _amdgpu.parse_amd_smi_version(doc)["driver"] == "inbox kernel driver (6.8.0-79-generic)"


def test_amd_smi_static_of_the_wrong_command_names_the_command():
    """Constructed amd-smi metric --json (constructed/amd-smi): no product, gfx, VRAM fields."""
    doc = text(CONSTRUCTED / "amd-smi" / "metric-6.2-1xMI300X.json")
    with pytest.raises(ProbeError) as err:
        _amdgpu.parse_amd_smi_static(doc)
    msg = str(err.value)
    assert msg.startswith("amd-smi static --json: GPU record 0 has none of the product, "
                          "gfx target, VRAM fields")
    assert "not the output of `amd-smi static`" in msg and "(check gpu.facts)" in msg
    assert "fix: save or run `amd-smi static --json` itself" in msg


@pytest.mark.parametrize(("path", "command"), [
    (RECORDED / "amd-smi" / "version-23.4.2-rocm-6.1.0.txt", "amd-smi static --json"),
    (RECORDED / "amd-smi" / "version-25.3.0-rocm-6.4.0.txt", "amd-smi static --json"),
])
def test_json_parser_given_plain_text_quotes_its_first_line(path, command):
    """A JSON parser given a recorded plain-text output quotes the first line it printed."""
    with pytest.raises(ProbeError) as err:
        _amdgpu.parse_amd_smi_static(text(path))
    first = text(path).splitlines()[0][:120]
    assert f"it printed first: {first!r}" in str(err.value)
    assert "without --json" in str(err.value)


def test_rocm_smi_json_parser_given_a_text_table_quotes_its_first_line():
    table = "========= ROCm System Management Interface =========\nGPU[0]\t\t: Card Series: X\n"
    with pytest.raises(ProbeError,
                       match=r"it printed first: '========= ROCm System Management Interface"):
        _amdgpu.parse_rocm_smi(table)


def test_rocm_smi_5x_gpu_id_and_gfx9010():
    """Constructed ROCm 5.x rocm-smi JSON: "GPU ID" (6.x: "Device ID"), "GFX Version" gfx9010."""
    got = _amdgpu.parse_rocm_smi(text(CONSTRUCTED / "rocm-smi" / "rocm-5.x-gpu-id-2xMI210.json"))
    assert [g["device_id"] for g in got["gpus"]] == ["0x740f", "0x740f"]
    assert {g["gfx_target"] for g in got["gpus"]} == {"gfx90a"}
    assert [g["bdf"] for g in got["gpus"]] == ["0000:03:00.0", "0000:83:00.0"]


def test_real_rocm_smi_gfx9010_is_gfx90a():
    """Recorded `rocm-smi --showproductname --json` on an MI250X (ROCm/rocm_smi_lib#159)."""
    got = _amdgpu.parse_rocm_smi(
        text(RECORDED / "rocm-smi" / "mi250x-showproductname-rocm_smi_lib-159.json"))
    (gpu,) = got["gpus"]
    assert (gpu["device_id"], gpu["gfx_target"]) == ("0x7408", "gfx90a")
    assert gpu["product"] == "AMD INSTINCT MI200 (MCM) OAM LC MBA HPE C2"


def test_real_rocm_smi_5x_gpu_id():
    """Recorded ROCm 5.x `rocm-smi --json` on an MI250X (wandb/wandb#5449): "GPU ID"."""
    got = _amdgpu.parse_rocm_smi(
        text(RECORDED / "rocm-smi" / "mi250x-gpu-id-wandb-5449-excerpt.json"))
    (gpu,) = got["gpus"]
    assert (gpu["device_id"], gpu["bdf"]) == ("0x7408", "0000:c1:00.0")


def test_real_amd_smi_metric_given_as_static_is_refused():
    """Recorded `amd-smi metric -u --json` (henrygd/beszel#737) where static was expected."""
    with pytest.raises(ProbeError) as err:
        _amdgpu.parse_amd_smi_static(
            text(RECORDED / "amd-smi" / "metric-usage-w7700-beszel-737-excerpt.json"))
    assert "GPU record 0 has none of the product, gfx target, VRAM fields (keys: gpu, usage)" \
        in str(err.value)
    assert "not the output of `amd-smi static`" in str(err.value)


@pytest.mark.parametrize("doc", ["", "usage: amd-smi [-h]", '{"rocm_version": ', "[1, 2]"])
def test_amd_smi_version_malformed(doc):
    with pytest.raises(ProbeError, match=r"^amd-smi version --json: .*check gpu.facts"):
        _amdgpu.parse_amd_smi_version(doc)


TOPOLOGY_CASES = [
    (RECORDED / "amd-smi" / "topology-links-2gpu.json", {0: [], 1: []}),
    (RECORDED / "amd-smi" / "topology-legacy-2gpu.json", {0: [], 1: []}),
    (DERIVED / "amd-smi" / "topology-8xMI300X.json",
     {i: [j for j in range(8) if j != i] for i in range(8)}),
]


@pytest.mark.parametrize(("path", "expected"), TOPOLOGY_CASES, ids=lambda p: getattr(p, "name", ""))
def test_amd_smi_topology(path, expected):
    assert _amdgpu.parse_amd_smi_topology(text(path)) == expected


def test_amd_smi_topology_legacy_xgmi_map():
    doc = '[{"gpu": 0, "link_type": {"gpu_0": "SELF", "gpu_1": "XGMI"}},' \
          ' {"gpu": 1, "link_type": {"gpu_0": "XGMI", "gpu_1": "SELF"}}]'
    assert _amdgpu.parse_amd_smi_topology(doc) == {0: [1], 1: [0]}


def test_rocm_smi_8_and_7_gpus():
    full = _amdgpu.parse_rocm_smi(text(DERIVED / "rocm-smi" / "8xMI300X.json"))
    assert [g["bdf"] for g in full["gpus"]] == MI300X_BDFS
    assert {g["gfx_target"] for g in full["gpus"]} == {"gfx942"}
    assert {g["vram_total_bytes"] for g in full["gpus"]} == {VRAM}
    assert full["driver_version"] == "6.8.5"
    assert all(len(v) == 7 for v in full["xgmi"].values())
    seven = _amdgpu.parse_rocm_smi(text(DERIVED / "rocm-smi" / "7xMI300X-gpu-missing.json"))
    assert len(seven["gpus"]) == 7 and "0000:bf:00.0" not in [g["bdf"] for g in seven["gpus"]]


def test_rocm_smi_real_radeon_780m():
    """rocm-smi-lib 6.2.4 on a Radeon 780M (sebhildebrandt/systeminformation#960): other keys."""
    got = _amdgpu.parse_rocm_smi(text(RECORDED / "rocm-smi/radeon-780m-rocm-smi-lib-6.2.4.json"))
    gpu = got["gpus"][0]
    assert (gpu["product"], gpu["bdf"], gpu["device_id"]) == ("Phoenix3", "0000:c4:00.0", "0x1900")
    assert gpu["vram_total_bytes"] is None and got["xgmi"] is None


def test_rocm_smi_real_showmemuse_without_identity():
    """rocm-smi 1.4.1 --json --showmemuse (ROCm/rocm_smi_lib#120): cards without any identity."""
    got = _amdgpu.parse_rocm_smi(text(RECORDED / "rocm-smi/rx6800-showmemuse-1.4.1.json"))
    assert [g["index"] for g in got["gpus"]] == [0, 1]
    assert all(g["product"] is None and g["bdf"] is None for g in got["gpus"])


@pytest.mark.parametrize(("doc", "problem"), [
    # the real rocm-smi message of ROCm/legacy-rocm-build#4374
    ("WARNING: No JSON data to report", "not JSON"),
    ('{"card0": "N/A"}', "card0 is not an object"),
    ("[]", "expected a JSON object"),
    ('{"card0": {"Card Series": "MI300X"', "malformed JSON"),
])
def test_rocm_smi_malformed(doc, problem):
    with pytest.raises(ProbeError) as err:
        _amdgpu.parse_rocm_smi(doc)
    assert str(err.value).startswith("rocm-smi --json: ") and problem in str(err.value)


def test_sysfs_fit_tree():
    got = _amdgpu.sysfs_gpus(str(TREES / "fit"))
    gpus = got["gpus"]
    assert [g["bdf"] for g in gpus] == MI300X_BDFS          # card0 (ASPEED BMC VGA) skipped
    assert {g["gfx_target"] for g in gpus} == {"gfx942"}
    assert {g["product"] for g in gpus} == {"AMD Instinct MI300X"}
    assert {g["vram_total_bytes"] for g in gpus} == {VRAM}
    summary = _amdgpu.xgmi_summary(got["xgmi"])
    assert summary["full_mesh"] is True and summary["min_peers"] == 7


def test_sysfs_unfit_tree_has_seven():
    got = _amdgpu.sysfs_gpus(str(TREES / "unfit"))
    assert len(got["gpus"]) == 7
    assert _amdgpu.xgmi_summary(got["xgmi"])["full_mesh"] is True


def test_sysfs_bad_number(tmp_path):
    dev = tmp_path / "sys/class/drm/card1/device"
    dev.mkdir(parents=True)
    (dev / "vendor").write_text("0x1002\n")
    (dev / "mem_info_vram_total").write_text("lots\n")
    with pytest.raises(ProbeError, match=r"mem_info_vram_total: expected a number"):
        _amdgpu.sysfs_gpus(str(tmp_path))


def test_sysfs_empty_root(tmp_path):
    assert _amdgpu.sysfs_gpus(str(tmp_path)) == {"gpus": [], "xgmi": None}


@pytest.mark.parametrize(("value", "expected"), [
    ("gfx942", "gfx942"), (90402, "gfx942"), ("90010", "gfx90a"), (110000, "gfx1100"),
    (0, None), ("N/A", None), (None, None), ("GFX950", "gfx950"),
    # rocm-smi prints the stepping in decimal: gfx9010 is gfx90a, gfx9012 gfx90c
    ("gfx9010", "gfx90a"), ("gfx9012", "gfx90c"), ("gfx90a", "gfx90a"), ("gfx1010", "gfx1010"),
    ("gfx1100", "gfx1100"), ("gfx803", "gfx803"), ("gfx1201", "gfx1201"),
    # shapes that fit no gfx target stay as printed (the gfx check then shows them)
    ("gfx9410", "gfx9410"), ("gfx99999", "gfx99999"),
])
def test_gfx_name(value, expected):
    assert _amdgpu.gfx_name(value) == expected


@pytest.mark.parametrize(("value", "unit", "expected"), [
    ({"value": 192, "unit": "GB"}, "MB", 192 * 1024**3),
    ("192 GB", "MB", 192 * 1024**3),
    (196592, "MB", VRAM),
    ("196592 MB", "B", VRAM),
    ("N/A", "MB", None),
    ({"value": "N/A", "unit": "MB"}, "MB", None),
    ("206141652992", "B", VRAM),
])
def test_to_bytes(value, unit, expected):
    assert to_bytes(value, unit, "amd-smi static --json", "gpu.facts") == expected


def test_rocm_version_from_tree():
    assert _amdgpu.rocm_version_from_tree(str(TREES / "fit")) == "6.2.2"


def test_amd_smi_version_text_banner_with_spaces():
    """The recorded line with the banner's spaces kept (as other amd-smi builds print it)."""
    line = ("AMDSMI Tool: 25.3.0+ede62f2 | AMDSMI Library version: 25.3.0 | ROCm version: 6.4.0 | "
            "amdgpu version: Linux version 6.8.0-79-generic (buildd@lcy02-amd64-049) "
            "(x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0, GNU ld (GNU Binutils "
            "for Ubuntu) 2.42) #79-Ubuntu SMP PREEMPT_DYNAMIC Tue Aug 12 14:42:46 UTC 2025 | "
            "amd_hsmp version: N/A")
    got = _amdgpu.parse_amd_smi_version(line, "amd-smi version")
    assert got == {"amd_smi": "25.3.0+ede62f2", "amdsmi_library": "25.3.0", "rocm": "6.4.0",
                   "driver": "inbox kernel driver (6.8.0-79-generic)"}
