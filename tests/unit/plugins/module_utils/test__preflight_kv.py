"""The KV path part of the preflight evaluation: probe and ib_write_bw outputs -> pairs ->
findings and the Markdown section (roles/preflight/tasks/kv_path.yml feeds these)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.inferops.disagg.plugins.filter.preflight import (
    preflight_ib_write_bw,
    preflight_kv_pairs,
)
from ansible_collections.inferops.disagg.plugins.module_utils import _preflight, _preflight_kv

MOONCAKE_LOG = ("WARNING: Logging before InitGoogleLogging() is written to STDERR\n"
                "W1126 06:00:52.425196 26397 topology.cpp:201] No RDMA devices found\n"
                "I1126 06:00:52.425257 26397 tcp_transport.cpp:391] TcpTransport: listen on "
                "port 16444\n")
OK_LINE = {"ok": True, "bytes": 201326592, "seconds": 0.247183, "gbps": 6.516, "verified": True,
           "session": "172.29.217.21:16347", "protocol": "tcp", "device": "", "repeat": 3,
           "block_bytes": 4194304, "to": "172.29.217.21:18990", "from": "172.29.217.11",
           "digest": "5a73", "hcas": None}
RECEIVER = {"decode-1": {"ok": True, "control": "172.29.217.21:18990", "error": "",
                         "log_tail": []}}
SETTINGS = {"protocol": "tcp", "device": "", "min_gbps": 1.0, "ib_min_gbps": 0.0,
            "ib_note": "protocol tcp, no RDMA to measure", "perftest_hosts": []}
# perftest 4.5 client with --report_gbits -D 3 (a ConnectX-7 400G RoCE pair), with the cpufreq
# warning perftest prints between header and row without -F.
IB_GBITS = """\
---------------------------------------------------------------------------------------
                    RDMA_Write BW Test
 Dual-port       : OFF		Device         : mlx5_0
 Number of qps   : 1		Transport type : IB
 Connection type : RC		Using SRQ      : OFF
 Link type       : Ethernet
 GID index       : 3
---------------------------------------------------------------------------------------
 #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]
Conflicting CPU frequency values detected: 1500.000000 != 3300.016000. CPU Frequency is not max.
 65536      2930148          0.00               383.91		     0.732261
---------------------------------------------------------------------------------------
"""
IB_MBYTES = """\
 #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]
 65536      5000             11664.51            11653.17		   0.186451
"""


def sent(line: dict | None, item: str = "decode-1", status: int = 0, **extra) -> dict:
    """A registered docker_container (detach: false) loop result."""
    output = MOONCAKE_LOG + (json.dumps(line) + "\n" if line is not None else "")
    res = {"item": item, "changed": True, "status": status,
           "container": {"Id": "abc", "Output": output}, **extra}
    if status:
        res.update(failed=True, msg=output)
    return res


def pairs(results: list, receivers: dict | None = None, ib: dict | None = None,
          **settings) -> list[dict]:
    return preflight_kv_pairs(results, "prefill-1", receivers or RECEIVER, ib or {},
                              {**SETTINGS, **settings})


def test_probe_line_found_among_mooncake_logs() -> None:
    assert _preflight_kv.parse_kv_probe(MOONCAKE_LOG + json.dumps(OK_LINE) + "\n") == OK_LINE
    assert _preflight_kv.parse_kv_probe(MOONCAKE_LOG) is None
    assert _preflight_kv.parse_kv_probe('{"ready": true}') is None  # the receiver's line
    assert _preflight_kv.parse_kv_probe(None) is None


def test_ib_write_bw_tables() -> None:
    assert _preflight_kv.parse_ib_write_bw(IB_GBITS) == 383.91
    assert _preflight_kv.parse_ib_write_bw(IB_MBYTES) == pytest.approx(97.75, abs=0.01)
    assert _preflight_kv.parse_ib_write_bw("Couldn't connect to 10.0.0.6:18515") is None
    assert _preflight_kv.parse_ib_write_bw("") is None


def test_ib_write_bw_outcomes() -> None:
    ran = preflight_ib_write_bw({"rc": 0, "stdout": IB_GBITS, "stderr": ""}, {}, "cmd")
    assert ran == {"status": "ran", "gbps": 383.91, "note": "cmd"}
    failed = preflight_ib_write_bw(
        {"rc": 1, "stdout": "", "stderr": " Couldn't connect to 10.0.0.6:18515\nUnable to init "
         "the socket connection"}, {"rc": 124, "stderr": "ethernet_read_keys: Couldn't read"})
    assert failed["status"] == "failed" and failed["gbps"] is None
    assert failed["note"] == ("ib_write_bw exited 1: Couldn't connect to 10.0.0.6:18515 / "
                              "Unable to init the socket connection server: "
                              "ethernet_read_keys: Couldn't read")
    assert preflight_ib_write_bw({"skipped": True})["status"] == "skipped"


def test_pair_passes() -> None:
    (pair,) = pairs([sent(OK_LINE)])
    assert pair["pair"] == "prefill-1->decode-1" and pair["ok"] and pair["gbps"] == 6.516
    assert pair["control"] == "172.29.217.21:18990" and pair["session"] == OK_LINE["session"]
    assert pair["ib_write_bw"] == {"status": "skipped", "gbps": None,
                                   "note": "protocol tcp, no RDMA to measure"}
    assert _preflight_kv.kv_pair_findings(pair) == []


def test_pair_below_threshold_is_one_line() -> None:
    slow = {**OK_LINE, "gbps": 0.42, "bytes": 201326592, "seconds": 3.83}
    findings = _preflight.evaluate("prefill-1", {"kv_path": pairs([sent(slow)])}, {
        "check_gpu": False, "check_rdma": False, "check_tunables": False, "check_docker": False})
    assert _preflight.render(findings[0]) == (
        "prefill-1->decode-1: kv.path: found 0.42 Gbit/s (tcp, 192 MiB in 3.83 s), expected >= 1 "
        "Gbit/s, verified (tcp); fix: check the network between the hosts (iperf3), or use rdma "
        "(preflight_kv_probe_protocol) where the hosts have RDMA NICs; or lower "
        "preflight_kv_probe_min_gbps")
    assert len(findings) == 1


def test_rdma_threshold_and_fix() -> None:
    line = {**OK_LINE, "gbps": 42.0, "protocol": "rdma", "device": "mlx5_0,mlx5_1"}
    (pair,) = pairs([sent(line)], protocol="rdma", device="mlx5_0,mlx5_1", min_gbps=100.0)
    (f,) = _preflight_kv.kv_pair_findings(pair)
    assert f["found"] == "42 Gbit/s (rdma mlx5_0,mlx5_1, 192 MiB in 0.247 s)"
    assert f["expected"] == ">= 100 Gbit/s, verified (rdma mlx5_0,mlx5_1)"
    assert "preflight_kv_probe_devices" in f["fix"] and "MC_GID_INDEX" in f["fix"]


def test_check_off_gives_no_finding() -> None:
    slow = pairs([sent({**OK_LINE, "gbps": 0.1})])
    off = {"check_gpu": False, "check_rdma": False, "check_tunables": False,
           "check_docker": False, "check_kv_path": False}
    assert _preflight.evaluate("prefill-1", {"kv_path": slow}, off) == []
    assert _preflight.evaluate("prefill-1", {"kv_path": None}, {**off, "check_kv_path": True}) == []


def test_probe_error_names_the_peer_and_fix() -> None:
    err = {**OK_LINE, "ok": False, "gbps": None, "seconds": None, "bytes": 0, "verified": False,
           "session": None, "error": "receiver 172.29.217.21:18990: cannot reach its control "
           "port: [Errno 111] Connection refused (gave up after 30 s)"}
    (pair,) = pairs([sent(err, status=1)])
    (f,) = _preflight_kv.kv_pair_findings(pair)
    assert f["host"] == "prefill-1->decode-1" and f["check"] == "kv.path"
    assert f["found"] == f"no transfer ({err['error']})"
    assert f["fix"].startswith("let prefill-1 reach 172.29.217.21:18990 over TCP")


def test_corrupted_bytes() -> None:
    bad = {**OK_LINE, "ok": False, "verified": False,
           "error": "receiver x: ... holds different bytes than were sent ..."}
    (f,) = _preflight_kv.kv_pair_findings(pairs([sent(bad, status=1)])[0])
    assert f["found"] == "6.52 Gbit/s but the bytes arrived corrupted"


def test_receiver_did_not_start() -> None:
    receivers = {"decode-1": {"ok": False, "control": "172.29.217.21:18990",
                              "error": "container pdk-kvprobe-recv-decode-1 exited with code 1",
                              "log_tail": ["I1126 x.cpp] noise", "", "kvprobe: protocol rdma but "
                                           "Mooncake found no RDMA device on 10.0.0.6"]}}
    (pair,) = pairs([{"item": "decode-1", "skipped": True}], receivers)
    assert pair["error"] == ("the receiver on decode-1 did not start: container "
                             "pdk-kvprobe-recv-decode-1 exited with code 1; its last log lines: "
                             "I1126 x.cpp] noise / kvprobe: protocol rdma but Mooncake found no "
                             "RDMA device on 10.0.0.6")
    (f,) = _preflight_kv.kv_pair_findings(pair)
    assert f["fix"].startswith("see the receiver's log lines in decode-1.json")


def test_receiver_without_docker() -> None:
    receivers = {"decode-1": {"ok": False, "control": "10.0.0.6:18990", "log_tail": [],
                              "error": "Error connecting: Error while fetching server API version: "
                              "('Connection aborted.', FileNotFoundError(2, 'No such file'))"}}
    (f,) = _preflight_kv.kv_pair_findings(pairs([], receivers)[0])
    assert f["found"].startswith("no transfer (the receiver on decode-1 did not start: Error "
                                 "connecting: ")
    assert f["fix"].startswith("start dockerd on decode-1")


def test_container_without_result_line() -> None:
    res = {"item": "decode-1", "failed": True, "msg": "Error starting container: no such image"}
    (pair,) = pairs([res])
    assert pair["error"] == ("the probe container on prefill-1 printed no result (Error "
                             "starting container: no such image)")


def test_receiver_host_missing_from_the_loop() -> None:
    receivers = {**RECEIVER, "decode-2": {"ok": True, "control": "10.0.0.7:18990"}}
    out = pairs([sent(OK_LINE)], receivers)
    assert [p["pair"] for p in out] == ["prefill-1->decode-1", "prefill-1->decode-2"]
    assert out[1]["error"] == "the sender on prefill-1 did not run"


def test_ib_notes_and_results() -> None:
    ib = {"prefill-1->decode-1": {"status": "ran", "gbps": 180.5, "note": "ib_write_bw ..."}}
    receivers = {**RECEIVER, "decode-2": {"ok": True, "control": "10.0.0.7:18990"}}
    out = pairs([sent(OK_LINE), sent(OK_LINE, item="decode-2")], receivers, ib, ib_note="",
                perftest_hosts=["prefill-1", "decode-1"], ib_min_gbps=300.0)
    assert out[0]["ib_write_bw"]["gbps"] == 180.5
    assert out[1]["ib_write_bw"] == {"status": "skipped", "gbps": None,
                                     "note": "perftest (ib_write_bw) not installed on decode-2"}
    (f,) = _preflight_kv.kv_pair_findings(out[0])
    assert _preflight.render(f).startswith("prefill-1->decode-1: kv.ib_write_bw: found 180.5 "
                                           "Gbit/s, expected >= 300 Gbit/s; fix: check the link")
    failed = {"prefill-1->decode-1": {"status": "failed", "gbps": None, "note": "exited 1"}}
    (f,) = _preflight_kv.kv_pair_findings(pairs([sent(OK_LINE)], ib=failed, ib_note="")[0])
    assert f["check"] == "kv.ib_write_bw" and f["found"] == "no result (exited 1)"
    assert f["expected"] == "a result"


def test_markdown_section() -> None:
    good = pairs([sent(OK_LINE)])
    slow = preflight_kv_pairs([sent({**OK_LINE, "gbps": 0.42})], "prefill-2", RECEIVER, {},
                              SETTINGS)
    findings = {"prefill-1": [], "prefill-2": _preflight_kv.evaluate_kv_path(slow, {}),
                "decode-1": []}
    md = _preflight.markdown(findings, "Preflight (warn)", good + slow)
    assert "3 hosts, 2 fit, 1 with findings, 1 findings." in md
    assert "| prefill-2->decode-1 | kv.path | 0.42 Gbit/s (tcp, 192 MiB in 0.247 s) |" in md
    assert "## KV path" in md and "2 prefill->decode pairs probed" in md
    assert ("| prefill-1->decode-1 | tcp | 6.52 Gbit/s (192 MiB in 0.247 s) | >= 1 Gbit/s | yes "
            "| skipped: protocol tcp, no RDMA to measure | pass |") in md
    assert "| prefill-2->decode-1 | tcp | 0.42 Gbit/s (192 MiB in 0.247 s) | >= 1 Gbit/s | yes" \
        in md and "| FAIL: kv.path 0.42 Gbit/s" in md
    assert "## KV path" not in _preflight.markdown(findings)


# --- which pairs are probed (kv_targets) -----------------------------------------------------

P = [f"prefill-{i}" for i in range(1, 17)]
D = [f"decode-{i}" for i in range(1, 16)]


def _pairs(senders: list[str], receivers: list[str], mode: str) -> list[tuple[str, str]]:
    return [(s, r) for s in senders for r in _preflight_kv.kv_targets(senders, receivers, s, mode)]


@pytest.mark.parametrize(
    ("senders", "receivers", "mode", "count"),
    [
        pytest.param(P[:2], D[:1], "all", 2, id="2p1d-all"),
        pytest.param(P[:2], D[:1], "auto", 2, id="2p1d-auto-is-all"),
        pytest.param(P[:8], D[:8], "auto", 64, id="8p8d-auto-is-all-at-64"),
        pytest.param(P[:8], D[:7], "cover", 8, id="8p7d-cover"),
        pytest.param(P, D, "all", 240, id="16p15d-all"),
        pytest.param(P, D, "auto", 16, id="16p15d-auto-is-cover"),
        pytest.param(P[:2], D, "cover", 15, id="2p15d-cover"),
    ],
)
def test_kv_targets_pair_counts_and_cover(senders: list[str], receivers: list[str], mode: str,
                                          count: int) -> None:
    pairs = _pairs(senders, receivers, mode)
    assert len(pairs) == count and len(set(pairs)) == count
    # every sender and every receiver is in at least one pair
    assert {p[0] for p in pairs} == set(senders) and {p[1] for p in pairs} == set(receivers)


def test_kv_targets_all_rotates_by_sender_index() -> None:
    assert _preflight_kv.kv_targets(P[:3], D[:3], "prefill-1", "all") == D[:3]
    assert _preflight_kv.kv_targets(P[:3], D[:3], "prefill-2", "all") == [D[1], D[2], D[0]]


def test_kv_targets_cover_spreads_the_receivers() -> None:
    # 16P15D: prefill-16 takes decode-1 again (i = 15 -> receiver 0); the others one each
    assert _preflight_kv.kv_targets(P, D, "prefill-1", "cover") == ["decode-1"]
    assert _preflight_kv.kv_targets(P, D, "prefill-16", "cover") == ["decode-1"]
    # 2P5D: each sender several receivers
    assert _preflight_kv.kv_targets(P[:2], D[:5], "prefill-2", "cover") == ["decode-2", "decode-4"]


def test_kv_targets_never_pairs_a_host_with_itself() -> None:
    hosts = ["node-1", "node-2", "node-3"]  # colocated: every host sends and receives
    for mode in ("all", "cover"):
        pairs = _pairs(hosts, hosts, mode)
        assert all(s != r for s, r in pairs) and {p[1] for p in pairs} == set(hosts), pairs
    assert _preflight_kv.kv_targets(["solo"], ["solo"], "solo", "cover") == []


def test_kv_targets_not_a_sender_and_bad_mode() -> None:
    assert _preflight_kv.kv_targets(P[:2], D[:1], "decode-1", "all") == []
    with pytest.raises(ValueError, match="'mesh' is not one of all, cover, auto"):
        _preflight_kv.kv_targets(P[:2], D[:1], "prefill-1", "mesh")


def test_kv_pair_list_and_filters_name_the_fix() -> None:
    from ansible.errors import AnsibleFilterError
    from ansible_collections.inferops.disagg.plugins.filter.preflight import (
        preflight_kv_pair_list,
        preflight_kv_targets,
    )

    assert preflight_kv_pair_list(P[:2], D[:2], "all") == [
        ["prefill-1", "decode-1"], ["prefill-1", "decode-2"],
        ["prefill-2", "decode-2"], ["prefill-2", "decode-1"]]
    assert preflight_kv_pair_list(P[:2], D[:2], "cover") == [
        ["prefill-1", "decode-1"], ["prefill-2", "decode-2"]]
    for call in (lambda: preflight_kv_pair_list(P, D, "ring"),
                 lambda: preflight_kv_targets("prefill-1", P, D, "ring")):
        with pytest.raises(AnsibleFilterError, match="Fix: set preflight_kv_probe_pairs to all"):
            call()
