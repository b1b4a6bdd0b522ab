"""Integration (issue 15, secrets): worker env values whose names are secret reach the container
and nothing else - not the task output at -vvv, not pdctl's run directory (artifacts/stdout,
job_events, pdctl.log, summary.json, env/), not the plan, the summary or collect_logs' docker
inspect copies.

Its own 1P1D rehearsal cluster (a clone named pdu on 172.29.234.0/24). HF_TOKEN comes from an
Ansible Vault variable, MY_ORG_AUTH (a name made secret by disagg_secret_env_names) from a file
read with the file lookup on the controller (docs/secrets.md). Order: pdctl deploy -vvv
(create; its raw -vvv output is the run directory's artifacts/deploy/stdout), pdctl plan -vvv
with new values (check mode: docker_container's diff of a recreate), pdctl logs; then every file
of every run directory and pdctl's output hold 0 copies of any of the four values, while docker
inspect of the workers shows the deployed ones.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NAME, SUBNET = "pdu", "172.29.234.0/24"
CLUSTER = [sys.executable, str(REPO / "scripts" / "cluster.py")]
WORKERS = (f"{NAME}-prefill-prefill-1", f"{NAME}-decode-decode-1")


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_VAULT_PASSWORD_FILE": str(tmp / "vault_pass"),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def _run(tmp: Path, *argv: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=REPO, env=_env(tmp), capture_output=True,
                          text=True, timeout=timeout, check=False)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, \
        f"rc={proc.returncode}\n{proc.stdout[-5000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _set_secrets(inventory: Path, tmp: Path, token: str, org: str) -> None:
    """HF_TOKEN as a vaulted variable, MY_ORG_AUTH from a file (lookup on the controller)."""
    vaulted = subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file",
         str(tmp / "vault_pass"), token, "--name", "pdu_hf_token"],
        capture_output=True, text=True, check=True).stdout
    (inventory / "group_vars" / "all" / "zz_vault.yml").write_text("---\n" + vaulted)
    (tmp / "org_auth").write_text(org)
    (tmp / "org_auth").chmod(0o600)


def _env_of(container: str) -> dict[str, str]:
    out = subprocess.run(["docker", "inspect", "--format", "{{json .Config.Env}}", container],
                         capture_output=True, text=True, check=True).stdout
    return dict(e.split("=", 1) for e in json.loads(out))


def _hits(root: Path, values: list[str]) -> list[str]:
    """Every file under root holding any of values (bytes, so binary files count too)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {v[:8]}..." for v in values if v.encode() in data]
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A 1P1D clone named pdu, with the secrets' settings; removed afterwards."""
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True,
                                                    check=False).returncode != 0:
        pytest.skip("Docker engine not reachable")
    tmp = tmp_path_factory.mktemp("pdu")
    inventory = tmp / "inv"
    subprocess.run([*CLUSTER, "clone", "--dest", str(inventory), "--name", NAME, "--subnet",
                    SUBNET], check=True, capture_output=True, cwd=REPO)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    del hosts["all"]["children"]["rehearsal_hosts"]["children"]["prefill"]["hosts"]["prefill-2"]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (tmp / "vault_pass").write_text(secrets.token_hex(16))
    images = subprocess.run([sys.executable, str(REPO / "scripts" / "rehearsal_image.py"),
                             "--env-file"], capture_output=True, text=True, check=True).stdout
    image = dict(line.split("=", 1) for line in Path(images.strip()).read_text().split())
    (inventory / "group_vars" / "all" / "zz_test.yml").write_text(yaml.safe_dump({
        "disagg_image": image["REHEARSAL_IMAGE"],
        "disagg_secret_env_names": ["MY_ORG_*"],
        "disagg_container_env": {
            "HSA_NO_SCRATCH_RECLAIM": "1", "NCCL_IB_DISABLE": "1", "NCCL_IGNORE_CPU_AFFINITY": "1",
            "MY_ORG_AUTH": "{{ lookup('ansible.builtin.file', '%s') }}" % (tmp / "org_auth")},
        "sglang_worker_env": {"HF_TOKEN": "{{ pdu_hf_token }}"},
    }))
    subprocess.run([*CLUSTER, "down", "-i", str(inventory)], capture_output=True, cwd=REPO,
                   check=False)  # leftovers of an aborted run
    try:
        _ok(_run(tmp, *CLUSTER, "up", "-i", inventory, timeout=1800))
        yield inventory, tmp
    finally:
        _run(tmp, BIN / "ansible-playbook", "-i", inventory, REPO / "playbooks" / "teardown.yml")
        _run(tmp, *CLUSTER, "down", "-i", inventory, timeout=600)


# A deploy at -vvv, a plan at -vvv and a log collection on one cluster (~5 min on an idle machine).
@pytest.mark.timeout(2700)
def test_no_secret_in_any_output_or_run_record(cluster: tuple[Path, Path]) -> None:
    inventory, tmp = cluster
    first = [f"hf_test_{secrets.token_hex(12)}", f"orgauth_{secrets.token_hex(12)}"]
    second = [f"hf_test_{secrets.token_hex(12)}", f"orgauth_{secrets.token_hex(12)}"]
    runs = tmp / "runs"

    _set_secrets(inventory, tmp, *first)
    deploy = _ok(_run(tmp, BIN / "pdctl", "deploy", "-i", inventory, "--json", "-vvv",
                      "--run-dir", runs / "deploy"))
    for name in WORKERS:
        env = _env_of(name)
        assert (env["HF_TOKEN"], env["MY_ORG_AUTH"]) == tuple(first), name
    vvv = (runs / "deploy" / "artifacts" / "deploy" / "stdout").read_text()
    assert "ESTABLISH SSH CONNECTION" in vvv, "not a -vvv run"
    # A container without secrets keeps its full output (no no_log): the router's result.
    router = vvv.split(f"Run the container - {NAME}-router-proxy-1]", 1)[1].split("TASK [", 1)[0]
    assert "module_args" in router and "censored" not in router

    # new values: docker_container's diff (check mode) would show the env of a recreate
    _set_secrets(inventory, tmp, *second)
    plan = _ok(_run(tmp, BIN / "pdctl", "plan", "-i", inventory, "--json", "-vvv",
                    "--run-dir", runs / "plan"))
    doc = json.loads((runs / "plan" / "plan.json").read_text())
    assert doc["counts"]["recreate"] == 2, doc["counts"]
    decode = doc["hosts"]["decode-1"]["containers"][0]
    assert decode["env"]["HF_TOKEN"] == decode["env"]["MY_ORG_AUTH"] == "***"
    assert decode["reason"] == "changed: env"

    logs = _ok(_run(tmp, BIN / "pdctl", "logs", "-i", inventory, "--json",
                    "--run-dir", runs / "logs"))
    inspect = json.loads((runs / "logs" / "decode-1" / f"{WORKERS[1]}.inspect.json").read_text())
    assert {"HF_TOKEN=***", "MY_ORG_AUTH=***"} <= set(inspect["Config"]["Env"])

    values = first + second
    assert list((runs / "deploy" / "artifacts").rglob("job_events/*.json"))
    assert _hits(runs, values) == []
    for name, text in (("pdctl deploy -vvv", deploy), ("pdctl plan -vvv", plan),
                       ("pdctl logs", logs)):
        assert not [v for v in values if v in text], f"{name} printed a secret"


def test_a_failing_container_with_a_secret_fails_with_docker_message_redacted(
        tmp_path: Path) -> None:
    """No cluster: _common's container.yml on the controller, image that cannot be pulled. The
    docker_container task is censored (its env has HF_TOKEN); the next task fails with docker's
    message, in which the token (planted in the image tag) reads ***."""
    if not shutil.which("docker"):
        pytest.skip("needs the Docker engine")
    token = f"hf_fail_{secrets.token_hex(10)}"
    role = tmp_path / "roles" / "wrap" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(yaml.safe_dump([{
        "name": "Run a container that cannot start",
        "ansible.builtin.include_role": {"name": "inferops.disagg._common",
                                         "tasks_from": "container.yml"},
        "vars": {"_common_container_what": "test worker",
                 "_common_container_name": f"{NAME}-secret-fail-test",
                 "_common_container_image": f"localhost:1/{NAME}-no-such-image:{token}",
                 "_common_container_command": ["sleep", "1"],
                 "_common_container_env": {"HF_TOKEN": token, "PLAIN": "1"},
                 "_common_container_network_mode": "none"}}]))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(
        [{"hosts": "localhost", "gather_facts": False, "roles": ["wrap"]}]))
    (tmp_path / "vault_pass").write_text("unused")
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
        cwd=REPO, env={**_env(tmp_path), "ANSIBLE_ROLES_PATH": str(tmp_path / "roles")},
        capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-4000:]
    assert token not in out
    assert f"could not run the test worker container {NAME}-secret-fail-test: Error pulling" \
        in " ".join(out.split()), out[-4000:]
    assert f"{NAME}-no-such-image:***" in out and "secrets HF_TOKEN are hidden" in out
