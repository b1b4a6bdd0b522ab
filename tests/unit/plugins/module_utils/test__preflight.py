"""The fact modules' gather() on the fixture trees, and the evaluation into findings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.inferops.disagg.plugins.module_utils import _preflight
from ansible_collections.inferops.disagg.plugins.module_utils._probe import ProbeError
from ansible_collections.inferops.disagg.plugins.modules import (
    amdgpu_facts,
    host_tunables,
    rdma_facts,
)

from ._preflight_helpers import FIXTURES, REPO, TREES, FakeModule

MODEL = "/models/Qwen2.5-0.5B-Instruct"
UNFIT_CHECKS = [
    "gpu.amd_smi", "gpu.count", "rdma.port_state", "rdma.active_mtu", "rdma.roce_v2_gid",
    "host.numa_balancing", "host.iommu", "host.memlock",
]


def gpu(tree: str) -> dict:
    module = FakeModule(root=str(TREES / tree), amd_smi_path=None, rocm_smi_path=None,
                        sources=["amd-smi", "rocm-smi", "sysfs"])
    return {"ansible_facts": {"amdgpu": amdgpu_facts.gather(module)}}


def rdma(tree: str) -> dict:
    module = FakeModule(root=str(TREES / tree), ibv_devinfo_path=None)
    return {"ansible_facts": {"rdma": rdma_facts.gather(module)}}


def tunables(tree: str, **params) -> dict:
    base = {"root": str(TREES / tree), "model_path": MODEL, "ports": [30000, 8998],
            "check_docker": False, "docker_socket": None, "docker_timeout": 1.0}
    base.update(params)
    return {"ansible_facts": {"host_tunables": host_tunables.gather(FakeModule(**base))}}


def results(tree: str, **params) -> dict:
    return {"amdgpu": gpu(tree), "rdma": rdma(tree), "host_tunables": tunables(tree, **params)}


def test_fixture_trees_are_up_to_date():
    proc = subprocess.run([sys.executable, str(FIXTURES / "build_trees.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_gpu_gather_fit_uses_amd_smi():
    facts = gpu("fit")["ansible_facts"]["amdgpu"]
    assert facts["source"] == "amd-smi" and facts["gpu_count"] == 8
    assert facts["versions"]["rocm"] == "6.2.2" and facts["versions"]["driver"] == "6.8.5"
    assert facts["xgmi"]["full_mesh"] is True and facts["devices"] == {"kfd": True, "dri_render": 8}
    assert facts["tools"]["rocm_smi"] is not None


def test_gpu_gather_unfit_falls_back_to_rocm_smi():
    facts = gpu("unfit")["ansible_facts"]["amdgpu"]
    assert (facts["source"], facts["gpu_count"]) == ("rocm-smi", 7)
    assert facts["fallbacks"] == ["amd-smi: not found"]
    assert facts["versions"]["rocm"] == "6.2.2"   # from /opt/rocm/.info/version


def test_gpu_gather_sysfs_only():
    module = FakeModule(root=str(TREES / "unfit"), amd_smi_path=None, rocm_smi_path=None,
                        sources=["sysfs"])
    facts = amdgpu_facts.gather(module)
    assert (facts["source"], facts["gpu_count"]) == ("sysfs", 7)


def test_gpu_gather_malformed_names_the_command():
    with pytest.raises(ProbeError) as err:
        gpu("malformed")
    assert str(err.value).startswith("amd-smi static --json: malformed JSON")
    assert err.value.check == "gpu.facts"


def test_gpu_gather_tool_exit_code_falls_back(tmp_path):
    broken = tmp_path / "amd-smi"
    broken.write_text("#!/bin/sh\necho 'ERROR: amdgpu driver not loaded' >&2\nexit 1\n")
    broken.chmod(0o755)
    module = FakeModule(root=str(TREES / "fit"), amd_smi_path=str(broken), rocm_smi_path=None,
                        sources=["amd-smi", "rocm-smi", "sysfs"])
    facts = amdgpu_facts.gather(module)
    assert facts["source"] == "rocm-smi"
    assert facts["fallbacks"][0].startswith("amd-smi static --json exited 1: ERROR: amdgpu driver")


def test_fit_has_no_findings():
    assert _preflight.evaluate("fit", results("fit"), {"model_path": MODEL,
                                                       "ports_free": [30000, 8998]}) == []


def test_unfit_reports_every_planted_fault_once():
    findings = _preflight.evaluate("unfit", results("unfit"), {"model_path": MODEL})
    assert [f["check"] for f in findings] == UNFIT_CHECKS
    lines = [_preflight.render(f) for f in findings]
    assert lines[1].startswith("unfit: gpu.count: found 7 GPUs (")
    assert "expected 8 GPUs; fix: " in lines[1]
    assert "mlx5_3/1 DOWN" in lines[2] and "mlx5_5/1 1024 (netdev ens15np0 mtu 1500)" in lines[3]
    assert "mlx5_6/1 only IPv6 GIDs" in lines[4]
    assert lines[7].startswith("unfit: host.memlock: found 64 KiB")
    assert all("; fix: " in line for line in lines)


@pytest.mark.parametrize("failed", [
    {"failed": True, "msg": "amd-smi static --json: malformed JSON (...)"},
    # what `register` holds under `failed_when: false`, as the role runs the modules
    {"failed": False, "failed_when_result": False, "changed": False, "check": "gpu.facts",
     "msg": "amd-smi static --json: malformed JSON (...)"},
])
def test_failed_module_becomes_one_finding(failed):
    res = results("fit")
    res["amdgpu"] = failed
    findings = _preflight.evaluate("h", res)
    assert [f["check"] for f in findings] == ["gpu.facts"]
    assert findings[0]["found"].startswith("amd-smi static --json: malformed JSON")


@pytest.mark.parametrize(("thresholds", "check", "found"), [
    ({"rdma_gid_index": 1}, "rdma.gid_index", "RoCE v2 IPv4 GID at index 3"),
    ({"gpu_count": 4}, "gpu.count", "8 GPUs"),
    ({"gpu_product": "MI325X"}, "gpu.product", "AMD Instinct MI300X"),
    ({"gpu_min_rocm_version": "7.0"}, "gpu.rocm_version", "6.2.2"),
    ({"rdma_devices": ["mlx5_0", "mlx5_7"]}, "rdma.devices", "missing mlx5_7"),
    ({"rdma_min_rate_gbps": 800}, "rdma.rate", "mlx5_0/1 400 Gb/sec (4X NDR)"),
    ({"cpu_governor": "schedutil"}, "host.cpu_governor", "performance on 8 CPUs"),
    ({"min_hugepages": 1024}, "host.hugepages", "0 hugepages"),
    ({"min_max_map_count": 1048576}, "host.max_map_count", "vm.max_map_count=65530"),
    ({"gpu_min_vram_gib": 256}, "gpu.vram", "0000:0c:00.0 196592 MiB"),
])
def test_thresholds(thresholds, check, found):
    findings = _preflight.evaluate("fit", results("fit"), thresholds)
    assert [f["check"] for f in findings] == [check]
    assert found in findings[0]["found"]


@pytest.mark.parametrize(("path", "found"), [
    ("/models/absent", "/models/absent missing"),
    ("/etc/docker", "no config.json, no *.safetensors weights"),
])
def test_model_path(path, found):
    findings = _preflight.evaluate("fit", results("fit", model_path=path), {"model_path": path})
    assert [(f["check"], f["found"]) for f in findings] == [("host.model_path", found)]


def listing(*names: str, path: str = MODEL) -> dict:
    """What the role's ansible.builtin.find of the model directory registers."""
    return {"changed": False, "files": [{"path": f"{path}/{n}", "islnk": False} for n in names],
            "matched": len(names), "examined": len(names) + 2, "skipped_paths": {},
            "msg": "All paths examined"}


def model_findings(res: dict, **thresholds) -> list[tuple[str, str]]:
    findings = _preflight.evaluate("prefill-1", res, {"model_path": MODEL, **thresholds})
    return [(f["check"], f["found"]) for f in findings]


@pytest.mark.parametrize("name", _preflight.TOKENIZER_FILES)
def test_model_any_tokenizer_file_is_enough(name):
    res = results("fit")
    res["model_files"] = listing(name, "tokenizer_config.json")
    assert model_findings(res) == []


@pytest.mark.parametrize(("names", "found"), [
    ((), "no tokenizer"),
    # tokenizer_config.json names the tokenizer class; the vocabulary is elsewhere
    (("tokenizer_config.json",), "no tokenizer (tokenizer_config.json only)"),
    (("tokenizer_config.json", "special_tokens_map.json"),
     "no tokenizer (tokenizer_config.json only)"),
])
def test_model_without_tokenizer_names_host_and_path(names, found):
    res = results("fit")
    res["model_files"] = listing(*names)
    findings = _preflight.evaluate("prefill-1", res, {"model_path": MODEL})
    assert [(f["check"], f["found"]) for f in findings] == [("host.model_path", found)]
    line = _preflight.render(findings[0])
    assert line.startswith(f"prefill-1: host.model_path: found {found}, expected {MODEL} with "
                           "config.json, a tokenizer (tokenizer.json, ")
    assert f"hf download <hf_repo> --local-dir {MODEL}" in line


def test_model_missing_directory_names_the_path():
    res = results("fit", model_path="/models/absent")
    res["model_files"] = {"skipped": True, "changed": False}  # the role skips the listing then
    findings = _preflight.evaluate("decode-1", res, {"model_path": "/models/absent"})
    assert [(f["check"], f["found"]) for f in findings] == [
        ("host.model_path", "/models/absent missing")]
    assert _preflight.render(findings[0]).startswith(
        "decode-1: host.model_path: found /models/absent missing, expected /models/absent with ")


def test_model_listing_that_failed_is_a_problem_not_a_pass():
    res = results("fit")
    res["model_files"] = {"failed": True, "msg": "Permission denied"}
    assert model_findings(res) == [
        ("host.model_path", "tokenizer files not listed (Permission denied)")]


def test_model_require_chooses_what_counts():
    res = results("fit")                     # config.json + model.safetensors, no tokenizer
    res["model_files"] = listing()
    assert model_findings(res, model_require=["config", "weights"]) == []   # recorded-tree default
    assert model_findings(res, model_require=[]) == []                      # directory only
    assert model_findings(res, model_require=["tokenizer"]) == [("host.model_path", "no tokenizer")]
    with pytest.raises(ValueError, match="unknown model_require items: tokeniser"):
        model_findings(res, model_require=["tokeniser"])


def test_model_without_weights(tmp_path):
    """A directory with config and tokenizer but no weights (the rehearsal's model directories)."""
    model = tmp_path / "models" / "rehearsal-tiny"
    model.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (model / name).write_text("{}\n")
    base = {"root": str(tmp_path), "model_path": "/models/rehearsal-tiny", "ports": [],
            "check_docker": False, "docker_socket": None, "docker_timeout": 1.0}
    res = {"host_tunables": {"ansible_facts": {
        "host_tunables": host_tunables.gather(FakeModule(**base))}},
        "model_files": listing("tokenizer.json", "tokenizer_config.json",
                               path="/models/rehearsal-tiny")}
    only = {"check_gpu": False, "check_rdma": False, "check_docker": False,
            "check_kv_path": False, "model_path": "/models/rehearsal-tiny"}

    def model(thresholds: dict) -> list[str]:   # the bare tmp tree fails other host.* checks
        return [f["found"] for f in _preflight.evaluate("h", res, thresholds)
                if f["check"] == "host.model_path"]

    assert model(only) == ["no *.safetensors weights"]
    assert model({**only, "model_require": ["config", "tokenizer"]}) == []


ROLE_INVENTORY = """
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    preflight_mode: warn
    preflight_check_gpu: false
    preflight_check_rdma: false
    preflight_check_docker: false
    preflight_check_kv_path: false
    disagg_model_root: {models}
    disagg_model_profile: Qwen3-32B
  children:
    prefill:
      hosts:
        real-prefill: {{}}
        tree-default:
          preflight_root: {tree}
        tree-named:
          preflight_root: {tree}
          preflight_model_path: {model}
    decode:
      hosts:
        real-decode:
          sglang_worker_model_path: /srv/absent/model
    proxy:
      hosts:
        real-proxy: {{}}
"""


def test_role_checks_the_workers_model_directory_by_default(tmp_path: Path):
    """The role's defaults and wiring, in check mode: on real hosts (root /) prefill and decode
    get the workers' --model-path checked for config.json, a tokenizer and weights; the proxy
    and a recorded tree without a named path are not checked; a named path on a recorded tree
    keeps the config + weights check."""
    qwen = tmp_path / "models" / "Qwen3-32B"
    qwen.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "model-00001-of-00001.safetensors"):
        (qwen / name).write_text("{}\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(ROLE_INVENTORY.format(models=tmp_path / "models", tree=TREES / "fit",
                                               model=MODEL))
    playbook = tmp_path / "preflight.yml"
    playbook.write_text("- name: Preflight\n  hosts: all\n  gather_facts: false\n  roles:\n"
                        "    - role: inferops.disagg.preflight\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--check", "-i", str(inventory),
         str(playbook), "-e", f"disagg_run_dir={tmp_path / 'run'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = {}
    for report in (tmp_path / "run" / "preflight").glob("*.json"):
        doc = json.loads(report.read_text())
        seen[doc["host"]] = (doc["thresholds"]["model_path"],
                             [f["found"] for f in doc["findings"]
                              if f["check"] == "host.model_path"])
    assert seen == {
        "real-prefill": (str(qwen), []),
        "real-decode": ("/srv/absent/model", ["/srv/absent/model missing"]),
        "real-proxy": (None, []),
        "tree-default": (None, []),
        "tree-named": (MODEL, []),
    }


def test_busy_port():
    res = results("fit", ports=[31000, 30000])   # 31000 listens in the recorded /proc/net/tcp
    findings = _preflight.evaluate("fit", res, {"ports_free": [31000, 30000]})
    assert [(f["check"], f["found"]) for f in findings] == [("host.ports", "in use: 31000")]


def test_docker_unreachable_and_toggles(tmp_path):
    res = results("fit", check_docker=True, docker_socket=str(tmp_path / "none.sock"))
    findings = _preflight.evaluate("fit", res)
    assert [f["check"] for f in findings] == ["docker.reachable"]
    assert _preflight.evaluate("fit", res, {"check_docker": False}) == []
    only_host = _preflight.evaluate("unfit", results("unfit"),
                                    {"check_gpu": False, "check_rdma": False})
    assert [f["check"] for f in only_host] == UNFIT_CHECKS[5:]


def test_skipped_family_gives_no_finding():
    res = results("fit")
    res["amdgpu"] = {"skipped": True, "changed": False,
                     "skip_reason": "Conditional result was False"}
    assert _preflight.evaluate("h", res, {"check_gpu": False}) == []


def test_unknown_threshold_is_an_error():
    with pytest.raises(ValueError, match="unknown preflight thresholds: gpu_cnt"):
        _preflight.evaluate("h", {}, {"gpu_cnt": 8})


def test_markdown_table():
    md = _preflight.markdown({"fit": [], "unfit": _preflight.evaluate("unfit", results("unfit"))})
    assert "2 hosts, 1 fit, 1 with findings, 8 findings." in md
    assert "| fit | all | fit | - | - |" in md
    assert md.count("| unfit | ") == 8


@pytest.mark.parametrize(("text", "expected"), [
    ("6.2.2-116", (6, 2, 2)), ("7.0", (7, 0)), ("v6.4.0", (6, 4, 0)), ("N/A", None), (None, None),
])
def test_version_tuple(text, expected):
    assert _preflight.version_tuple(text) == expected


def test_truncated_ibv_devinfo_device_is_a_finding():
    """A device of a recorded ibv_devinfo output cut before its port lines (issue 15)."""
    from ansible_collections.inferops.disagg.plugins.module_utils import _rdma
    recorded = FIXTURES / "recorded" / "ibv_devinfo" / "azhpc-images-44-cx5-vf.txt"
    cut = "\n".join(recorded.read_text().splitlines()[:10])
    devices = _rdma.parse_ibv_devinfo(cut)
    facts = {"source": "ibv_devinfo", "devices": devices, "uverbs": ["uverbs0"],
             **_rdma.summarize(devices)}
    result = {"ansible_facts": {"rdma": facts}}
    found = [f for f in _preflight.evaluate_rdma("h1", result, dict(_preflight.DEFAULTS,
                                                                    rdma_min_devices=1))
             if f["check"] == "rdma.facts"]
    assert len(found) == 1
    assert found[0]["found"] == ("ibv_devinfo output incomplete: rdmaP23800p0s2: no port lines "
                                 "after its hca_id (output cut?)")
    assert "ibv_devinfo -v" in found[0]["fix"] and found[0]["host"] == "h1"
