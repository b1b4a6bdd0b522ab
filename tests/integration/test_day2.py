"""Integration: day-2 operations on a live rehearsal service (issue 12, docs/day2.md).

One cluster of its own (``pdd``, 172.29.227.0/24) with host containers for 3P2D; inventories
over the same hosts give 2P1D (the deploy) and 3P2D. In order, under a steady load through the
router: scale out 2P1D -> 3P2D with 0 failed requests, no router restart and only the added
workers started; a rolling update of both decode workers (each drained while the other serves);
a rollout whose new spec never gets healthy stopped at the first worker with the old one back in
service; scale in 3P2D -> 2P1D, only the removed workers gone; a removal that would empty a role
refused before anything changes; the kill_decode drill with its report (0 wrong answers, the
first good answer within 5 s of the restored worker); a surge stand-in that never gets healthy
leaves the only decode serving. The rolling update of every worker of 2P1D (the prefill workers
drained one at a time, the only decode surged) is in test_deploy.py.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.rehearsal import (
    CLUSTER_PY,
    REPO,
    Load,
    clone,
    containers,
    ok,
    playbook,
    run,
    subset,
    workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

CLUSTER = "pdd"
SUBNET = "172.29.227.0/24"
LABEL = f"io.inferops.disagg.rehearsal={CLUSTER}"
ROUTER = "http://172.29.227.10:30000"
NO_PREFLIGHT = ("--skip-tags", "preflight")
# The decode-only change the rolling update applies: written into every inventory's
# group_vars/decode.yml, it is the service's spec for the runs after it.
ROLLED = {"sglang_worker_env": {"PDD_ROLL": "1"}}

if shutil.which("docker") is None:
    pytest.skip("needs the Docker engine", allow_module_level=True)


@pytest.fixture(scope="module")
def inv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Inventories over one cluster: 3p2d (every host container) and 2p1d."""
    tmp = tmp_path_factory.mktemp("pdd")
    big = clone(tmp / "3p2d", CLUSTER, SUBNET, xp=3, yd=2)
    run(sys.executable, CLUSTER_PY, "down", "-i", big)  # leftovers of an aborted run
    env_file = Path(ok(run(sys.executable, REPO / "scripts" / "rehearsal_image.py",
                           "--env-file")).strip())
    images = dict(line.split("=", 1) for line in env_file.read_text().split())
    (big / "group_vars" / "all" / "zz_test.yml").write_text(
        yaml.safe_dump({"disagg_image": images["REHEARSAL_IMAGE"]}))
    one = subset(big, tmp / "2p1d", ["prefill-3", "decode-2"])
    try:
        ok(run(sys.executable, CLUSTER_PY, "up", "-i", big, timeout=1200))
        yield {"3p2d": big, "2p1d": one}
    finally:
        playbook(big, "teardown.yml")
        down = run(sys.executable, CLUSTER_PY, "down", "-i", big)
    assert down.returncode == 0, down.stderr


def _started(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    return sorted(n for n in after if n not in before or after[n]["id"] != before[n]["id"]
                  or after[n]["started"] != before[n]["started"])


def _under_load(inventory: Path, book: str, *extra: str) -> tuple[Load, str]:
    """Run a playbook (it must succeed) while a steady load goes through the router."""
    with Load(ROUTER) as load:
        time.sleep(2)
        out = ok(playbook(inventory, book, *extra))
        time.sleep(2)
    assert load.sent > 50 and load.failed == [], (load.sent, load.failed[:10])
    return load, out


def test_scale_out_under_load(inv: dict[str, Path]) -> None:
    """2P1D -> 3P2D under load: 0 failed, the router never restarted, only the added workers
    started; the router lists exactly the inventory's workers."""
    ok(playbook(inv["2p1d"], "deploy.yml"))
    before = containers(LABEL)
    _, out = _under_load(inv["3p2d"], "scale.yml", *NO_PREFLIGHT)
    grown = containers(LABEL)
    assert _started(before, grown) == [f"{CLUSTER}-decode-decode-2",
                                       f"{CLUSTER}-prefill-prefill-3"], out[-3000:]
    listed = [(t, h) for t, _, h in workers(ROUTER)]
    assert listed == [("decode", True)] * 2 + [("prefill", True)] * 3, listed


def test_rolling_update_of_both_decodes_of_3p2d(inv: dict[str, Path]) -> None:
    """Roll the two decode workers of 3P2D (a changed decode env) under load: each is drained
    while the other serves (no surge: neither is the only one), 0 failed requests, both
    replaced, the prefill workers and the router not."""
    before = containers(LABEL)
    for inventory in inv.values():
        (inventory / "group_vars" / "decode.yml").write_text(yaml.safe_dump(ROLLED))
    _, out = _under_load(inv["3p2d"], "rolling_update.yml")
    assert _started(before, containers(LABEL)) == [f"{CLUSTER}-decode-decode-1",
                                                   f"{CLUSTER}-decode-decode-2"], out[-3000:]
    # surge.yml is included only for a role's only instance; its tasks never appear here
    assert "Put the stand-in into the router" not in out, out[-3000:]
    assert f"{CLUSTER}-decode-decode-1-surge" not in containers(LABEL)
    assert [h for _, _, h in workers(ROUTER)] == [True] * 5


def test_rollout_that_never_gets_healthy_puts_the_old_worker_back(inv: dict[str, Path]) -> None:
    """A new spec that never gets healthy: the rollout stops at the first worker, exits
    non-zero naming host, container and the last log lines, and the old container (the same
    one) serves again; the load sees 0 failed requests; no other worker changed."""
    before = containers(LABEL)
    bad = json.dumps({"sglang_worker_extra_args": ["--rehearsal-never-ready"],
                      "sglang_worker_health_timeout": 15})
    with Load(ROUTER) as load:
        time.sleep(2)
        proc = playbook(inv["3p2d"], "rolling_update.yml", "-e", bad)
        time.sleep(2)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert load.sent > 50 and load.failed == [], (load.sent, load.failed[:10])
    name = f"{CLUSTER}-prefill-prefill-1"
    assert f"prefill-1: prefill worker container {name} (port 30001) is not healthy" in out, \
        proc.stdout[-4000:]
    assert "--rehearsal-never-ready: /health will stay 503" in out
    assert (f"Rolled back on prefill-1: the previous {name} serves again (healthy, back in the "
            f"router); the new one is kept stopped as {name}-failed.") in out, proc.stdout[-4000:]
    after = containers(LABEL)
    assert after[name]["id"] == before[name]["id"] and after[name]["running"]
    assert not after[f"{name}-failed"]["running"]
    assert {n: after[n] for n in before if n != name} == {n: v for n, v in before.items()
                                                          if n != name}
    assert [h for _, _, h in workers(ROUTER)] == [True] * 5


def test_scale_in_under_load(inv: dict[str, Path]) -> None:
    """3P2D -> 2P1D under load: 0 failed, only the removed workers gone, nothing else
    restarted; the router lists exactly the remaining workers."""
    grown = containers(LABEL)
    _under_load(inv["3p2d"], "scale.yml", *NO_PREFLIGHT, "-e",
                "disagg_remove_hosts=prefill-3,decode-2")
    shrunk = containers(LABEL)
    assert sorted(set(grown) - set(shrunk)) == [f"{CLUSTER}-decode-decode-2",
                                                f"{CLUSTER}-prefill-prefill-3"]
    assert _started(grown, shrunk) == [] and shrunk == {n: grown[n] for n in shrunk}
    assert sorted(u for _, u, _ in workers(ROUTER)) == [
        "http://172.29.227.11:30001", "http://172.29.227.12:30001", "http://172.29.227.21:30002"]


def test_removal_that_empties_a_role_is_refused(inv: dict[str, Path]) -> None:
    before = containers(LABEL)
    proc = playbook(inv["2p1d"], "scale.yml", *NO_PREFLIGHT, "-e",
                    "disagg_remove_hosts=prefill-1,prefill-2")
    assert proc.returncode != 0
    assert ("removing prefill-1, prefill-2 would leave no prefill instance, and the service "
            "would stop. Nothing was changed.") in " ".join(proc.stdout.split()), \
        proc.stdout[-3000:]
    assert containers(LABEL) == before


def test_kill_decode_drill_reports_and_recovers(inv: dict[str, Path]) -> None:
    """The kill_decode drill on 2P1D (its only decode): the report counts what failed, no
    answer is wrong, and the restored decode answers within 5 s of being healthy."""
    out = ok(playbook(inv["2p1d"], "drill.yml", "-e", "drill=kill_decode", "-e",
                      json.dumps({"benchmark_drill_warmup": 5, "benchmark_drill_hold": 8,
                                  "benchmark_drill_settle": 4})))
    found = re.search(r"Report: (\S+)/report\.md", " ".join(out.split()))
    assert found, out[-3000:]
    report_dir = Path(found.group(1))
    summary = json.loads((report_dir / "drill.json").read_text())
    assert summary["wrong"] == 0 and summary["sent"] > 20, summary
    assert summary["service_down"] and summary["failed_after_fault"] > 0, summary
    assert summary["first_good_after_healthy_s"] is not None
    assert summary["first_good_after_healthy_s"] <= 5.0, summary
    report = (report_dir / "report.md").read_text()
    assert report.startswith("# Drill kill_decode on decode-1") and "UNHEALTHY" in report, report
    assert workers(ROUTER)[0][0::2] == ("decode", True)


def test_surge_stand_in_that_never_gets_healthy_leaves_the_only_decode_serving(
        inv: dict[str, Path]) -> None:
    """2P1D, a new decode spec that never gets healthy: the surge stand-in fails its gate, the
    rollout stops non-zero naming it, the old decode (the same container) never left the
    router, the stand-in is kept stopped as NAME-failed, and the load sees 0 failed requests."""
    before = containers(LABEL)
    bad = json.dumps({"sglang_worker_extra_args": ["--rehearsal-never-ready"],
                      "sglang_worker_health_timeout": 15})
    with Load(ROUTER) as load:
        time.sleep(2)
        proc = playbook(inv["2p1d"], "rolling_update.yml", "-e", bad,
                        "--limit", "localhost:proxy:decode")
        time.sleep(2)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert load.sent > 50 and load.failed == [], (load.sent, load.failed[:10])
    name = f"{CLUSTER}-decode-decode-1"
    assert (f"decode-1: decode worker (surge stand-in) container {name}-surge (port 30102) is "
            "not healthy") in out, proc.stdout[-4000:]
    assert "--rehearsal-never-ready: /health will stay 503" in out
    assert (f"Surge on decode-1: the new spec never served as the stand-in {name}-surge, so the "
            f"old {name} was not touched and serves on; the stand-in is kept stopped as "
            f"{name}-failed.") in out, proc.stdout[-4000:]
    after = containers(LABEL)
    assert after[name] == before[name] and after[name]["running"]
    assert not after[f"{name}-failed"]["running"] and f"{name}-surge" not in after
    assert sorted(u for _, u, _ in workers(ROUTER)) == [
        "http://172.29.227.11:30001", "http://172.29.227.12:30001", "http://172.29.227.21:30002"]
    assert [h for _, _, h in workers(ROUTER)] == [True] * 3
