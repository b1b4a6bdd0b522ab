"""Multi-node instances: rank 0 serves HTTP, ranks > 0 join it at ``--dist-init-addr``.

SGLang spreads one instance over ``--nnodes`` hosts; rank 0 runs the HTTP server and the others
join its torch.distributed rendezvous at ``--dist-init-addr``. The rehearsal engine keeps the
shape: rank 0 listens on the dist-init port and is not ready until all other ranks joined; a
follower connects (retrying while rank 0 starts), announces its rank and stays connected.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import time

log = logging.getLogger("pd_rehearsal.dist")
JOIN_TIMEOUT = 600.0


def split_addr(addr: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too) into host and port."""
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--dist-init-addr must be HOST:PORT, got {addr!r}")
    return host.strip("[]"), int(port)


class Rendezvous:
    """Rank 0's side: accept ``nnodes - 1`` followers."""

    def __init__(self, nnodes: int) -> None:
        self.expected = set(range(1, nnodes))
        self.joined: dict[int, str] = {}
        self.complete = asyncio.Event()
        if not self.expected:
            self.complete.set()

    async def serve(self, addr: str) -> None:
        """Listen on the dist-init address's port (all interfaces)."""
        _, port = split_addr(addr)
        await asyncio.start_server(self._on_join, host="0.0.0.0", port=port)
        log.info("waiting for ranks %s to join on port %d", sorted(self.expected), port)

    async def _on_join(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        peer = writer.get_extra_info("peername")
        try:
            rank = int(line.removeprefix("rank "))
        except ValueError:
            writer.close()
            return
        if rank not in self.expected:
            log.error(
                "rank %d from %s is not expected (nnodes=%d)", rank, peer, len(self.expected) + 1
            )
            writer.close()
            return
        self.joined[rank] = str(peer[0]) if peer else "?"
        log.info(
            "rank %d joined from %s (%d/%d)",
            rank,
            self.joined[rank],
            len(self.joined),
            len(self.expected),
        )
        writer.write(b"ok\n")
        await writer.drain()
        if set(self.joined) == self.expected:
            self.complete.set()
        await reader.read()  # held open for the follower's lifetime
        log.error("rank %d left the instance", rank)
        self.joined.pop(rank, None)


def run_follower(args: argparse.Namespace) -> int:
    """Join rank 0 and stay joined; exit 1 when the join fails or rank 0 goes away."""
    if not args.dist_init_addr:
        log.error("--node-rank %d needs --dist-init-addr", args.node_rank)
        return 2
    host, port = split_addr(args.dist_init_addr)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=5)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                log.error("rank %d could not join %s: %s", args.node_rank, args.dist_init_addr, exc)
                return 1
            time.sleep(1)
    sock.sendall(f"rank {args.node_rank}\n".encode())
    sock.settimeout(None)
    if sock.recv(3) != b"ok\n":
        log.error("rank 0 at %s refused rank %d", args.dist_init_addr, args.node_rank)
        return 1
    log.info(
        "rehearsal engine rank %d joined rank 0 at %s (no HTTP on this rank)",
        args.node_rank,
        args.dist_init_addr,
    )
    sock.recv(1)  # blocks until rank 0 closes
    log.error("rank 0 at %s went away", args.dist_init_addr)
    return 1
