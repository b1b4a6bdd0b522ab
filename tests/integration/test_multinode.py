"""Integration: a 2-node decode instance, from the inventory to a request through the router.

The sglang_worker role renders the commands (preflight + configure + the P/D agreement check)
for an inventory with one prefill host and two decode hosts and a profile whose decode spans
``nnodes: 2``: the role places decode-1 at rank 0 and decode-2 at rank 1 of one instance, both
pointing at decode-1's ``--dist-init-addr``. Those exact argv lists then run as loopback
processes (the rehearsal engine takes SGLang 0.5.2's flags; every host address is 127.0.0.1 and
each host has its own ports), behind the real sglang-router 0.3.2 with the prefill and the
instance's rank 0 only:

* rank 0 is not healthy until rank 1 has joined at the dist-init address,
* rank 1 serves no HTTP,
* requests flow router -> prefill -> Mooncake -> decode instance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import free_port, wait_http

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RENDER_PLAYBOOK = """\
- name: Render the worker commands as deploy.yml would (no container starts)
  hosts: prefill:decode
  gather_facts: false
  tasks:
    - name: Collection defaults
      ansible.builtin.import_role:
        name: inferops.disagg._common
        tasks_from: defaults.yml
    - name: Load the profile
      ansible.builtin.include_role:
        name: inferops.disagg.sglang_worker
        tasks_from: preflight.yml
      vars:
        sglang_worker_mode: "{{ 'prefill' if 'prefill' in group_names else 'decode' }}"
    - name: Render the command and publish the endpoint
      ansible.builtin.include_role:
        name: inferops.disagg.sglang_worker
        tasks_from: configure.yml
      vars:
        sglang_worker_mode: "{{ 'prefill' if 'prefill' in group_names else 'decode' }}"
    - name: Check prefill and decode agree
      ansible.builtin.include_role:
        name: inferops.disagg.sglang_worker
        tasks_from: check.yml
    - name: Write what each host would run
      ansible.builtin.copy:
        content: >-
          {{ {'argv': _sglang_worker_command, 'env': _sglang_worker_container_env,
              'endpoints': disagg_worker_endpoints} | to_json }}
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0644"
      delegate_to: localhost
"""


def two_node_profile() -> dict:
    """rehearsal-tiny with decode spanning two nodes (TP 2 = 1 GPU x 2 nodes); prefill TP 2."""
    profile = yaml.safe_load((REPO / "models" / "rehearsal-tiny.yml").read_text())
    profile["name"] = "rehearsal-tiny"
    profile["prefill"]["tp"] = 2  # same attention TP as the decode instance (KV layout check)
    profile["decode"].update({"tp": 2, "nnodes": 2})
    return profile


@pytest.fixture
def rendered(tmp_path: Path, model_dir: Path) -> dict[str, dict]:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "rehearsal-2node.yml").write_text(yaml.safe_dump(two_node_profile()))
    ports = {h: free_port() for h in ("prefill-1", "decode-1", "decode-2")}
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "vars": {
                "disagg_model_profile": "rehearsal-2node",
                "disagg_model_profiles_dir": str(profiles),
                "disagg_model_root": str(model_dir.parent),
                "disagg_launcher": [sys.executable, "-m", "pd_rehearsal"],
                "disagg_kv_transport": "tcp",  # loopback: no RDMA devices to derive
                "disagg_host_address": "127.0.0.1",
                "disagg_bootstrap_port": free_port(),
                "disagg_dist_init_port": free_port(),
                "sglang_worker_extra_args": [
                    "--rehearsal-kv-pool-mb",
                    "64",
                    "--rehearsal-startup-seconds",
                    "0.2",
                ],  # fmt: skip
                "out_dir": str(tmp_path),
            },
            "children": {
                "proxy": {"hosts": {"proxy-1": local}},
                "prefill": {
                    "hosts": {"prefill-1": {**local, "sglang_worker_port": ports["prefill-1"]}}
                },
                "decode": {
                    "hosts": {
                        "decode-1": {**local, "sglang_worker_port": ports["decode-1"]},
                        "decode-2": {**local, "sglang_worker_port": ports["decode-2"]},
                    }
                },
            },
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "render.yml").write_text(RENDER_PLAYBOOK)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
         str(tmp_path / "render.yml")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return {h: json.loads((tmp_path / f"{h}.json").read_text()) for h in ports}


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_role_places_two_decode_hosts_in_one_instance(rendered):
    d1, d2 = rendered["decode-1"], rendered["decode-2"]
    assert (flag(d1["argv"], "--nnodes"), flag(d1["argv"], "--node-rank")) == ("2", "0")
    assert (flag(d2["argv"], "--nnodes"), flag(d2["argv"], "--node-rank")) == ("2", "1")
    assert flag(d1["argv"], "--dist-init-addr") == flag(d2["argv"], "--dist-init-addr")
    assert flag(d1["argv"], "--dist-init-addr").startswith("127.0.0.1:")
    assert "--nnodes" not in rendered["prefill-1"]["argv"]
    e1, e2 = d1["endpoints"]["decode"], d2["endpoints"]["decode"]
    assert (e1["serves_http"], e2["serves_http"]) == (True, False)
    # Ports planned per host: no two processes on this machine share one.
    http_ports = [flag(r["argv"], "--port") for r in rendered.values()]
    assert len(set(http_ports)) == 3
    dist_port = flag(d1["argv"], "--dist-init-addr").rsplit(":", 1)[1]
    boot_port = flag(rendered["prefill-1"]["argv"], "--disaggregation-bootstrap-port")
    assert len({*http_ports, dist_port, boot_port}) == 5


def test_two_node_decode_instance_serves_through_the_real_router(rendered, procs):
    env = {k: v for k, v in rendered["decode-1"]["env"].items() if not k.startswith("NCCL_")}
    prefill_argv = rendered["prefill-1"]["argv"]
    d1_argv, d2_argv = rendered["decode-1"]["argv"], rendered["decode-2"]["argv"]
    p_url = f"http://127.0.0.1:{flag(prefill_argv, '--port')}"
    d_url = f"http://127.0.0.1:{flag(d1_argv, '--port')}"

    prefill = procs("prefill-1", prefill_argv, **env)
    rank0 = procs("decode-1-rank0", d1_argv, **env)
    wait_http(f"{p_url}/health", prefill)
    # Rank 0 answers HTTP but is not healthy while rank 1 has not joined.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            assert requests.get(f"{d_url}/health", timeout=1).status_code != 200
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    rank1 = procs("decode-2-rank1", d2_argv, **env)
    wait_http(f"{d_url}/health", rank0)
    assert rank1.popen.poll() is None, rank1.log()
    assert "joined rank 0" in rank1.log()
    with pytest.raises(requests.ConnectionError):  # rank 1 serves no HTTP
        requests.get(f"http://127.0.0.1:{flag(d2_argv, '--port')}/health", timeout=1)

    r_port = free_port()
    router = procs("router", [
        sys.executable, "-m", "sglang_router.launch_router", "--pd-disaggregation",
        "--prefill", p_url, flag(prefill_argv, "--disaggregation-bootstrap-port"),
        "--decode", d_url, "--host", "127.0.0.1", "--port", str(r_port),
        "--prometheus-port", str(free_port()), "--worker-startup-timeout-secs", "60",
        "--worker-startup-check-interval", "1", "--log-level", "warn",
    ])  # fmt: skip
    wait_http(f"http://127.0.0.1:{r_port}/readiness", router)
    workers = requests.get(f"http://127.0.0.1:{r_port}/workers", timeout=5).json()["workers"]
    assert sorted(w["worker_type"] for w in workers) == ["decode", "prefill"]
    for i in range(4):
        body = {"text": f"two node decode {i}", "sampling_params": {"max_new_tokens": 8}}
        r = requests.post(f"http://127.0.0.1:{r_port}/generate", json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["meta_info"]["completion_tokens"] == 8
    counters = requests.get(f"{d_url}/get_server_info", timeout=5).json()["counters"]
    assert counters, counters
