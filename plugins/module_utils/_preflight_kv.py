# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""PRIVATE preflight KV path evaluation (check ``kv.path``; not a public API).

The role runs the KV probe (roles/preflight/files/kvprobe.py) from sender (prefill) hosts to
receiver (decode) hosts (every pair, or a cover of them: :func:`kv_targets`), and ib_write_bw
where perftest is installed on both; these helpers
turn what the containers and commands printed into one dict per pair, the pair's findings and its
Markdown row. ``_preflight.evaluate`` and ``_preflight.markdown`` call
:func:`evaluate_kv_path` and :func:`kv_markdown`.
"""

from __future__ import annotations

import json

from ansible_collections.inferops.disagg.plugins.module_utils._findings import (
    cell,
    finding,
    human_bytes,
)

KV_PROBE_FIELDS = ("bytes", "seconds", "gbps", "verified", "session", "block_bytes", "repeat",
                   "phase", "hcas")


def _gbit(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"
    return f"{number:g}" if number >= 100 else f"{number:.3g}"


def parse_kv_probe(text: object) -> dict | None:
    """The JSON result line of ``kvprobe send`` in a container's output (stdout and stderr
    mixed: Mooncake logs on stderr), or None when there is none."""
    for line in reversed(str(text or "").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "ok" in data:
                return data
    return None


def parse_ib_write_bw(text: object) -> float | None:
    """BW average in Gbit/s from ib_write_bw's table (``--report_gbits`` or MB/sec), the row of
    the largest message size; None when the output has no table."""
    unit = None
    value = None
    for line in str(text or "").splitlines():
        if "BW average[" in line:
            unit = "gb" if "Gb/sec" in line else "mb"
            continue
        fields = line.split()
        if unit and len(fields) >= 4 and fields[0].isdigit() and fields[1].isdigit():
            try:
                value = float(fields[3])
            except ValueError:
                continue
    if unit is None or value is None:
        return None
    return value if unit == "gb" else value * 1048576 * 8 / 1e9  # perftest's MB is MiB


def ib_write_bw_result(client: object, server: object = None, note: str = "") -> dict:
    """One pair's ib_write_bw outcome from the client's (and server's) command results:
    ``{"status": "ran"|"failed"|"skipped", "gbps", "note"}``."""
    if not isinstance(client, dict) or client.get("skipped") or not client:
        return {"status": "skipped", "gbps": None, "note": note or "not run"}
    gbps = parse_ib_write_bw(client.get("stdout"))
    if client.get("rc") == 0 and gbps is not None:
        return {"status": "ran", "gbps": round(gbps, 2), "note": note}
    why = [str(client.get("stderr") or client.get("msg") or "").strip()]
    if isinstance(server, dict) and server.get("stderr"):
        why.append(f"server: {str(server['stderr']).strip()}")
    tail = " ".join(" / ".join(w.splitlines()[-2:]) for w in why if w)
    return {"status": "failed", "gbps": gbps,
            "note": f"ib_write_bw exited {client.get('rc')}" + (f": {tail}" if tail else "")}


def _container_output(result: dict) -> str:
    container = result.get("container") if isinstance(result.get("container"), dict) else {}
    return str(container.get("Output") or result.get("msg") or "")


def _ib_skipped(sender: str, receiver: str, settings: dict) -> dict:
    note = settings.get("ib_note")
    if not note:
        have = set(settings.get("perftest_hosts") or [])
        missing = [h for h in (sender, receiver) if h not in have]
        note = (f"perftest (ib_write_bw) not installed on {' and '.join(missing)}" if missing
                else "not run")
    return {"status": "skipped", "gbps": None, "note": note}


#: ``auto`` probes every pair up to this many pairs (senders x receivers), a cover above it.
KV_ALL_PAIRS_MAX = 64
KV_PAIR_MODES = ("all", "cover", "auto")


def kv_targets(senders: list[str], receivers: list[str], host: str,
               mode: str = "auto") -> list[str]:
    """The receivers ``host`` sends the KV probe to, in the order it sends.

    ``all``: every receiver but itself (senders x receivers pairs), rotated by the sender's index
    so that the senders start on different receivers. ``cover``: every sender and every receiver
    in at least one pair, max(senders, receivers) pairs: pair i is sender i mod P -> receiver i
    mod D (the next receiver when that is the sender itself). ``auto``: ``all`` up to
    ``KV_ALL_PAIRS_MAX`` pairs, ``cover`` above. A host that is no sender sends to none."""
    if mode not in KV_PAIR_MODES:
        raise ValueError(f"pair mode {mode!r} is not one of {', '.join(KV_PAIR_MODES)}")
    if host not in senders or not receivers:
        return []
    if mode == "auto":
        mode = "all" if len(senders) * len(receivers) <= KV_ALL_PAIRS_MAX else "cover"
    if mode == "all":
        peers = [r for r in receivers if r != host]
        shift = senders.index(host) % max(len(peers), 1)
        return peers[shift:] + peers[:shift]
    targets: list[str] = []
    for i in range(max(len(senders), len(receivers))):
        if senders[i % len(senders)] != host:
            continue
        receiver = receivers[i % len(receivers)]
        if receiver == host and len(receivers) > 1:
            receiver = receivers[(i + 1) % len(receivers)]
        if receiver != host and receiver not in targets:
            targets.append(receiver)
    return targets


def kv_pair_list(senders: list[str], receivers: list[str],
                 mode: str = "auto") -> list[list[str]]:
    """Every ``[sender, receiver]`` pair the probe checks (:func:`kv_targets` of each sender)."""
    return [[s, r] for s in senders for r in kv_targets(senders, receivers, s, mode)]


def kv_pairs(send_results: object, sender: str, receivers: dict, ib: dict | None,
             settings: dict) -> list[dict]:
    """One dict per pair ``sender->receiver`` from the registered loop of sender containers
    (``item`` = receiver name), the receivers' start-up outcome (``{name: {"ok", "error",
    "control", "log_tail"}}``), the ib_write_bw outcomes by pair name and the probe settings
    (protocol, device, min_gbps, ib_min_gbps; for pairs without an ib_write_bw outcome:
    ``ib_note``, why it did not run at all, or ``perftest_hosts``, the hosts that have it)."""
    by_receiver = {}
    for res in send_results or []:
        if isinstance(res, dict) and res.get("item") is not None:
            by_receiver[str(res["item"])] = res
    out = []
    for receiver in sorted(set(by_receiver) | {r for r in receivers if r != sender}):
        info = receivers.get(receiver) or {}
        pair = f"{sender}->{receiver}"
        row: dict = {"pair": pair, "sender": sender, "receiver": receiver, "ok": False,
                     "error": None, "protocol": settings.get("protocol"),
                     "device": settings.get("device") or "", "control": info.get("control"),
                     "min_gbps": settings.get("min_gbps"),
                     "ib_min_gbps": settings.get("ib_min_gbps") or 0,
                     "bytes": 0, "seconds": None, "gbps": None, "verified": False,
                     "session": None}
        res = by_receiver.get(receiver)
        if not info.get("ok"):
            tail = [ln for ln in info.get("log_tail") or [] if ln.strip()][-3:]
            row["error"] = (f"the receiver on {receiver} did not start: "
                            f"{info.get('error') or 'unknown error'}"
                            + (f"; its last log lines: {' / '.join(tail)}" if tail else ""))
        elif not isinstance(res, dict) or res.get("skipped"):
            row["error"] = f"the sender on {sender} did not run"
        else:
            output = _container_output(res)
            probe = parse_kv_probe(output)
            if probe is None:
                last = [ln for ln in output.splitlines() if ln.strip()][-3:]
                row["error"] = (f"the probe container on {sender} printed no result "
                                f"({' / '.join(last) or 'no output'})")
            else:
                row.update({k: probe[k] for k in KV_PROBE_FIELDS if k in probe})
                row["ok"] = bool(probe.get("ok"))
                row["error"] = probe.get("error")
        row["ib_write_bw"] = (ib or {}).get(pair) or _ib_skipped(sender, receiver, settings)
        out.append(row)
    return out


def _kv_fix(pair: dict) -> str:
    error = str(pair.get("error") or "")
    receiver, sender = pair.get("receiver"), pair.get("sender")
    control = pair.get("control") or "the probe port"
    if "did not start" in error and "Error connecting" in error:
        return (f"start dockerd on {receiver} and let the Ansible user use its socket "
                "(docker.reachable), or set preflight_docker_socket")
    if "did not start" in error:
        return (f"see the receiver's log lines in {receiver}.json; the probe needs Mooncake in "
                "the image (preflight_kv_probe_image), and for rdma the devices, IPC_LOCK and "
                "memlock the workers get")
    if "cannot reach its control port" in error or "refused the transfer" in error:
        return (f"let {sender} reach {control} over TCP (firewall, routes, "
                "disagg_host_address), or move preflight_kv_probe_port if it is taken")
    if "Mooncake" in error or "hung" in error:
        return (f"open Mooncake's ports (RPC 15000-17000, TCP transport) between {sender} and "
                f"{receiver}; for rdma check the devices (preflight_kv_probe_devices), "
                "MC_GID_INDEX and that both ports are ACTIVE on the same fabric")
    return f"run the probe by hand (roles/preflight/README.md, KV path) between {sender} and " \
        f"{receiver}"


def kv_pair_findings(pair: dict, min_gbps: object = None, ib_min_gbps: object = None) -> list:
    """The findings of one probed pair (host = ``sender->receiver``)."""
    name = str(pair.get("pair"))
    proto = pair.get("protocol") or "?"
    dev = f" {pair['device']}" if pair.get("device") else ""
    low = float(pair.get("min_gbps") if min_gbps is None else min_gbps or 0)
    expected = f">= {low:g} Gbit/s, verified ({proto}{dev})"
    out = []
    if not pair.get("ok"):
        if pair.get("gbps") is not None and pair.get("verified") is False and \
                "different bytes" in str(pair.get("error")):
            found = f"{_gbit(pair['gbps'])} Gbit/s but the bytes arrived corrupted"
            fix = ("check NIC firmware, PCIe ACS/IOMMU (host.iommu) and that both hosts run the "
                   "same Mooncake")
        else:
            found = f"no transfer ({pair.get('error') or 'unknown error'})"
            fix = _kv_fix(pair)
        out.append(finding(name, "kv.path", found, expected, fix))
    elif low and float(pair.get("gbps") or 0) < low:
        size = human_bytes(int(pair.get("bytes") or 0))
        found = (f"{_gbit(pair['gbps'])} Gbit/s ({proto}{dev}, {size} in "
                 f"{float(pair.get('seconds') or 0):.3g} s)")
        if proto == "rdma":
            fix = ("check the devices Mooncake uses (preflight_kv_probe_devices = "
                   "--disaggregation-ib-device), their rate and MTU (rdma.* rows), MC_GID_INDEX "
                   "and PFC/ECN on the switch ports; or lower preflight_kv_probe_min_gbps")
        else:
            fix = ("check the network between the hosts (iperf3), or use rdma "
                   "(preflight_kv_probe_protocol) where the hosts have RDMA NICs; or lower "
                   "preflight_kv_probe_min_gbps")
        out.append(finding(name, "kv.path", found, expected, fix))
    ib = pair.get("ib_write_bw") or {}
    ib_low = float(pair.get("ib_min_gbps") if ib_min_gbps is None else ib_min_gbps or 0)
    if ib.get("status") == "failed":
        out.append(finding(name, "kv.ib_write_bw", f"no result ({ib.get('note')})",
                           f"ib_write_bw >= {ib_low:g} Gbit/s" if ib_low else "a result",
                           "run the same ib_write_bw pair by hand (see the report's command); "
                           "check the device and GID index (-d, -x) and the port state"))
    elif ib.get("status") == "ran" and ib_low and float(ib.get("gbps") or 0) < ib_low:
        out.append(finding(name, "kv.ib_write_bw", f"{_gbit(ib['gbps'])} Gbit/s",
                           f">= {ib_low:g} Gbit/s",
                           "check the link rate (ethtool), PCIe width (lspci -vv) and "
                           "PFC/ECN; or lower preflight_kv_probe_ib_min_gbps"))
    return out


def evaluate_kv_path(pairs: object, t: dict) -> list[dict]:
    """Findings of every pair a sender host probed (none when the probe did not run)."""
    if not isinstance(pairs, list):
        return []
    out = []
    for pair in pairs:
        if isinstance(pair, dict):
            out += kv_pair_findings(pair, t.get("kv_min_gbps"), t.get("kv_ib_min_gbps"))
    return out


def kv_markdown(pairs: list[dict]) -> list[str]:
    """Lines of the KV path section: one row per probed pair, passing or not."""
    rows = sorted((p for p in pairs if isinstance(p, dict)), key=lambda p: str(p.get("pair")))
    lines = ["", "## KV path", "",
             f"{len(rows)} prefill->decode pairs probed (Mooncake write of deterministic bytes, "
             "verified on the receiver; ib_write_bw where perftest is installed on both hosts).",
             "", "| pair | protocol | Mooncake | expected | verified | ib_write_bw | result |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in rows:
        dev = f" {p['device']}" if p.get("device") else ""
        if p.get("gbps") is not None:
            moved = (f"{_gbit(p['gbps'])} Gbit/s ({human_bytes(int(p.get('bytes') or 0))} in "
                     f"{float(p.get('seconds') or 0):.3g} s)")
        else:
            moved = "no transfer"
        ib = p.get("ib_write_bw") or {}
        if ib.get("status") == "ran":
            ib_cell = f"{_gbit(ib.get('gbps'))} Gbit/s"
        else:
            ib_cell = f"{ib.get('status', 'skipped')}: {ib.get('note') or '-'}"
        problems = kv_pair_findings(p)
        result = "pass" if not problems else "FAIL: " + "; ".join(
            f"{f['check']} {f['found']}" for f in problems)
        lines.append("| " + " | ".join(cell(c) for c in (
            p.get("pair"), f"{p.get('protocol')}{dev}", moved,
            f">= {float(p.get('min_gbps') or 0):g} Gbit/s",
            "yes" if p.get("verified") else "no", ib_cell, result)) + " |")
    return lines
