"""Facts from a directory of saved command outputs (module option saved_outputs, the base of a
support-bundle "doctor"), checked by the preflight evaluation like a live host's."""

from __future__ import annotations

import json
import shutil

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.inferops.disagg.plugins.module_utils import _preflight, _saved_outputs
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError
from ansible_collections.inferops.disagg.plugins.modules import amdgpu_facts, rdma_facts

from ._preflight_helpers import DERIVED, RECORDED

CONSTRUCTED = RECORDED.parent / "constructed"


def bundle(tmp_path, files: dict[str, object]):
    """A saved-outputs directory: ``{saved name: fixture path}``."""
    for name, source in files.items():
        shutil.copy(source, tmp_path / name)
    return str(tmp_path)


def test_gpu_facts_from_amd_smi_json_outputs_are_fit(tmp_path):
    path = bundle(tmp_path, {
        "amd-smi-static.json": DERIVED / "amd-smi" / "static-24.6-list-8xMI300X.json",
        "amd-smi-version.txt": RECORDED / "amd-smi" / "version-25.3.0-rocm-6.4.0.txt",
        "amd-smi-topology.json": DERIVED / "amd-smi" / "topology-8xMI300X.json",
    })
    facts = _saved_outputs.gpu_facts_from_dir(path)
    assert (facts["source"], facts["gpu_count"]) == ("amd-smi", 8)
    assert facts["versions"]["rocm"] == "6.4.0" and facts["xgmi"]["full_mesh"] is True
    assert facts["devices"] == {"kfd": None, "dri_render": None}
    assert _preflight.evaluate_gpu("node-17", {"ansible_facts": {"amdgpu": facts}},
                                   dict(_preflight.DEFAULTS)) == []


def test_gpu_facts_from_a_concise_table_show_the_missing_gpus(tmp_path):
    path = bundle(tmp_path, {"rocm-smi.txt": CONSTRUCTED / "rocm-smi" / "concise-6.x-2xMI300X.txt"})
    facts = _saved_outputs.gpu_facts_from_dir(path)
    found = _preflight.evaluate_gpu("node-17", {"ansible_facts": {"amdgpu": facts}},
                                    dict(_preflight.DEFAULTS))
    assert [f["check"] for f in found] == ["gpu.amd_smi", "gpu.count", "gpu.rocm_version"]
    assert found[1]["host"] == "node-17" and found[1]["found"] == "2 GPUs (gpu0, gpu1)"


def test_gpu_facts_wrong_command_names_the_file_and_the_command(tmp_path):
    path = bundle(tmp_path, {"amd-smi-static.json": CONSTRUCTED / "amd-smi" /
                             "metric-6.2-1xMI300X.json"})
    with pytest.raises(ProbeError) as err:
        _saved_outputs.gpu_facts_from_dir(path)
    assert str(err.value).startswith(f"{tmp_path}/amd-smi-static.json (amd-smi static --json): "
                                     "GPU record 0 has none of the product")


def test_gpu_facts_without_a_listing_say_which_files_to_save(tmp_path):
    with pytest.raises(ProbeError, match=r"no GPU listing among the saved outputs .*"
                       r"fix: save one of amd-smi-static.json, amd-smi-static.txt"):
        _saved_outputs.gpu_facts_from_dir(str(tmp_path))
    with pytest.raises(ProbeError, match="saved outputs directory not found"):
        _saved_outputs.gpu_facts_from_dir(str(tmp_path / "absent"))


def test_rdma_facts_from_the_text_trio(tmp_path):
    rdma = CONSTRUCTED / "rdma"
    path = bundle(tmp_path, {"ibstat.txt": rdma / "ibstat-2xCX7.txt",
                             "show_gids.txt": rdma / "show_gids-2xCX7.txt",
                             "rdma-link.json": rdma / "rdma-link-show-j-2xCX7.json"})
    facts = _saved_outputs.rdma_facts_from_dir(path)
    assert (facts["source"], facts["mc_gid_index"], facts["uverbs"]) == (
        "ibstat+show_gids+rdma_link", 3, None)
    assert _preflight.evaluate_rdma("node-17", {"ansible_facts": {"rdma": facts}},
                                    dict(_preflight.DEFAULTS, rdma_min_devices=2)) == []


def test_rdma_facts_from_a_cut_ibv_devinfo(tmp_path):
    lines = (RECORDED / "ibv_devinfo" / "azhpc-images-44-cx5-vf.txt").read_text().splitlines()
    (tmp_path / "ibv_devinfo-v.txt").write_text("\n".join(lines[:10]) + "\n")
    facts = _saved_outputs.rdma_facts_from_dir(str(tmp_path))
    found = _preflight.evaluate_rdma("node-17", {"ansible_facts": {"rdma": facts}},
                                     dict(_preflight.DEFAULTS, rdma_min_devices=1))
    assert [f["check"] for f in found] == ["rdma.facts"]


def test_rdma_facts_name_the_file_of_a_bad_output(tmp_path):
    shutil.copy(RECORDED / "rdma" / "link-show-no-netlink-iproute2-6.1.0.txt",
                tmp_path / "rdma-link.txt")
    with pytest.raises(ProbeError) as err:
        _saved_outputs.rdma_facts_from_dir(str(tmp_path))
    assert str(err.value).startswith(
        f"{tmp_path}/rdma-link.txt (rdma link show): not a 'link <dev>/<port> ...' line: "
        "'Failed to open NETLINK_RDMA socket' (check rdma.facts); fix: ")


def run_main(module, args: dict, capsys) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_modules_read_saved_outputs(tmp_path, capsys):
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    bundle(gpu, {"amd-smi-static.txt": CONSTRUCTED / "amd-smi" / "static-text-6.2-2xMI300X.txt"})
    out = run_main(amdgpu_facts, {"saved_outputs": str(gpu)}, capsys)
    assert out["ansible_facts"]["amdgpu"]["gpu_count"] == 2
    out = run_main(rdma_facts, {"saved_outputs": str(gpu)}, capsys)
    assert out["failed"] is True and out["check"] == "rdma.facts"
    assert "none of the RDMA outputs saved" in out["msg"]


def stand_in(path, outputs: dict[str, object]):
    """An executable that prints the file for its argument line and exits 0, else exits 2
    (an old tool without --json)."""
    cases = "\n".join(f'  "{args}") cat "{source}" ;;' for args, source in outputs.items())
    path.write_text(f'#!/bin/sh\ncase "$*" in\n{cases}\n  *) echo "usage: bad option $*" >&2; '
                    'exit 2 ;;\nesac\n')
    path.chmod(0o755)
    return str(path)


def test_amdgpu_facts_falls_back_to_amd_smi_static_text(tmp_path):
    from ._preflight_helpers import FakeModule
    tool = stand_in(tmp_path / "amd-smi", {
        "static": CONSTRUCTED / "amd-smi" / "static-text-6.2-2xMI300X.txt",
        "version": RECORDED / "amd-smi" / "version-25.3.0-rocm-6.4.0.txt"})
    module = FakeModule(root=str(tmp_path), amd_smi_path=tool, rocm_smi_path=None,
                        sources=["amd-smi"], saved_outputs=None)
    facts = amdgpu_facts.gather(module)
    assert (facts["source"], facts["gpu_count"]) == ("amd-smi", 2)
    assert facts["fallbacks"][0].startswith("amd-smi static --json exited 2: usage: bad option")
    assert facts["versions"]["rocm"] == "6.4.0"
    assert [c[1:] for c in module.calls[:4]] == [["static", "--json"], ["static"],
                                                 ["version", "--json"], ["version"]]


def test_amdgpu_facts_falls_back_to_rocm_smi_text(tmp_path):
    from ._preflight_helpers import FakeModule
    args = " ".join(amdgpu_facts.ROCM_SMI_ARGS[:-1])
    tool = stand_in(tmp_path / "rocm-smi", {args: CONSTRUCTED / "rocm-smi" /
                                            "text-5.x-showid-productname-2xMI210.txt"})
    module = FakeModule(root=str(tmp_path), amd_smi_path=None, rocm_smi_path=tool,
                        sources=["rocm-smi"], saved_outputs=None)
    facts = amdgpu_facts.gather(module)
    assert [g["gfx_target"] for g in facts["gpus"]] == ["gfx90a", "gfx90a"]
    assert facts["fallbacks"][-1].startswith("rocm-smi --json exited 2")


def test_rdma_facts_fall_back_to_the_text_tools(tmp_path):
    from ._preflight_helpers import FakeModule
    rdma = CONSTRUCTED / "rdma"
    bin_dir = tmp_path / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    stand_in(bin_dir / "ibstat", {"": rdma / "ibstat-2xCX7.txt"})
    stand_in(bin_dir / "show_gids", {"": rdma / "show_gids-2xCX7.txt"})
    stand_in(bin_dir / "rdma", {"-j link show": rdma / "rdma-link-show-j-2xCX7.json"})
    module = FakeModule(root=str(tmp_path), ibv_devinfo_path=None, saved_outputs=None)
    facts = rdma_facts.gather(module)
    assert facts["source"] == "ibstat+show_gids+rdma_link"
    assert facts["fallbacks"] == ["/sys/class/infiniband: absent", "ibv_devinfo: not found"]
    assert facts["mc_gid_index"] == 3 and facts["device_count"] == 2


def test_evaluate_dir_checks_one_hosts_saved_outputs(tmp_path):
    host = tmp_path / "node-17"
    host.mkdir()
    bundle(host, {"amd-smi-static.json": DERIVED / "amd-smi" / "static-24.6-list-8xMI300X.json",
                  "amd-smi-version.txt": RECORDED / "amd-smi" / "version-25.3.0-rocm-6.4.0.txt",
                  "amd-smi-topology.json": DERIVED / "amd-smi" / "topology-8xMI300X.json",
                  "ibv_devinfo-v.txt": DERIVED / "ibv_devinfo" / "8xCX7-unfit.txt"})
    found = _saved_outputs.evaluate_dir(str(host))
    assert {f["host"] for f in found} == {"node-17"}
    assert [f["check"] for f in found] == ["rdma.port_state", "rdma.active_mtu",
                                           "rdma.roce_v2_gid"]


def test_evaluate_dir_turns_a_wrong_file_into_a_finding(tmp_path):
    bundle(tmp_path, {"amd-smi-static.json": CONSTRUCTED / "amd-smi" /
                      "metric-6.2-1xMI300X.json"})
    found = _saved_outputs.evaluate_dir(str(tmp_path), host="node-3")
    assert [(f["host"], f["check"]) for f in found] == [("node-3", "gpu.facts")]
    assert "amd-smi-static.json (amd-smi static --json): GPU record 0" in found[0]["found"]
