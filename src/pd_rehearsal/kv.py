"""KV bytes: the deterministic stand-in KV cache, a paged pool, and the Mooncake transfer engine.

Prefill renders the "KV cache" of a prompt as deterministic bytes (a function of the model
seed, each token id and its position), writes them into decode's registered buffers through
the real Mooncake transfer engine, and decode recomputes the same bytes from the prompt it
received to verify what arrived. Nothing here is a model: it is the data path of PD serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("pd_rehearsal.kv")

PAGE_TOKENS = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def kv_bytes(token_ids: Sequence[int], bytes_per_token: int, seed: int) -> bytes:
    """Return the deterministic KV bytes of a prompt (len = tokens x bytes_per_token)."""
    ids = np.asarray(token_ids, dtype=np.uint64)
    pos = np.arange(len(ids), dtype=np.uint64)
    lane = np.arange(bytes_per_token, dtype=np.uint64)
    row = (ids * np.uint64(40503) + pos * np.uint64(131) + np.uint64(seed)) & np.uint64(0xFFFFFFFF)
    mixed = (lane[None, :] * np.uint64(2654435761) + row[:, None] * np.uint64(97)) >> np.uint64(7)
    return (mixed & np.uint64(0xFF)).astype(np.uint8).tobytes()


def digest(data: bytes) -> str:
    """Short content digest used in logs and error messages."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def pages_needed(num_tokens: int, page_bytes: int, bytes_per_token: int) -> int:
    """Pages needed to hold the KV of ``num_tokens`` tokens."""
    total = num_tokens * bytes_per_token
    return max(1, -(-total // page_bytes))


def contiguous_runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Group page indices into (start_index, count) runs of consecutive pages, in order."""
    runs: list[tuple[int, int]] = []
    for idx in indices:
        if runs and runs[-1][0] + runs[-1][1] == idx:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((int(idx), 1))
    return runs


class PoolExhausted(Exception):
    """The request needs more pages than the whole pool holds."""


class PagePool:
    """A fixed set of equally sized pages with async allocation (waits when full).

    Waiting when the pool is full models SGLang's decode pre-allocation queue: a request
    whose KV does not fit waits for memory instead of failing.
    """

    def __init__(self, num_pages: int) -> None:
        self.num_pages = num_pages
        self._free: list[int] = list(range(num_pages - 1, -1, -1))
        self._cond = asyncio.Condition()

    @property
    def free_pages(self) -> int:
        """Pages currently free."""
        return len(self._free)

    async def alloc(self, n: int) -> list[int]:
        """Allocate ``n`` pages, waiting until enough are free."""
        if n > self.num_pages:
            raise PoolExhausted(
                f"request needs {n} KV pages but the pool has {self.num_pages}; "
                "raise --rehearsal-kv-pool-mb"
            )
        async with self._cond:
            await self._cond.wait_for(lambda: len(self._free) >= n)
            taken = [self._free.pop() for _ in range(n)]
        return sorted(taken)

    async def free(self, pages: Sequence[int]) -> None:
        """Return pages to the pool and wake waiters."""
        async with self._cond:
            self._free.extend(pages)
            self._cond.notify_all()


@dataclass
class MooncakeBuffer:
    """A Mooncake-registered memory region split into pages."""

    base: int
    page_bytes: int
    num_pages: int

    def addr(self, page: int) -> int:
        """Address of a page."""
        return self.base + page * self.page_bytes


class Mooncake:
    """The real Mooncake transfer engine (TCP in rehearsal), one per engine process."""

    def __init__(self, local_ip: str, metadata_server: str, protocol: str = "tcp") -> None:
        from mooncake.engine import TransferEngine  # imported late: needs libibverbs1

        self._te = TransferEngine()
        # With P2PHANDSHAKE the segment is named ip:<rpc port the engine picks>; with a
        # metadata server (etcd://, http://) it is the name we register, so make it unique.
        name = local_ip if metadata_server == "P2PHANDSHAKE" else f"{local_ip}:{_free_port()}"
        rc = self._te.initialize(name, metadata_server, protocol, "")
        if rc != 0:
            raise RuntimeError(
                f"Mooncake TransferEngine.initialize({name!r}, {metadata_server!r}, "
                f"{protocol!r}) returned {rc}; check the metadata server is reachable"
            )
        self.metadata_server = metadata_server
        self.session_id = f"{local_ip}:{self._te.get_rpc_port()}" if name == local_ip else name
        self._lock = threading.Lock()

    def allocate(self, total_bytes: int, page_bytes: int) -> MooncakeBuffer:
        """Allocate and register a buffer of ``total_bytes`` rounded down to whole pages."""
        num_pages = total_bytes // page_bytes
        if num_pages < 1:
            raise ValueError(f"buffer of {total_bytes} B holds no page of {page_bytes} B")
        base = self._te.allocate_managed_buffer(num_pages * page_bytes)
        if not base:
            raise RuntimeError(f"Mooncake could not allocate {num_pages * page_bytes} bytes")
        return MooncakeBuffer(base=base, page_bytes=page_bytes, num_pages=num_pages)

    def write_local(self, addr: int, data: bytes) -> None:
        """Copy bytes into a local registered buffer."""
        rc = self._te.write_bytes_to_buffer(addr, data, len(data))
        if rc != 0:
            raise RuntimeError(f"Mooncake write_bytes_to_buffer returned {rc}")

    def read_local(self, addr: int, n: int) -> bytes:
        """Read bytes from a local registered buffer."""
        return bytes(self._te.read_bytes_from_buffer(addr, n))

    def write_remote(
        self, session: str, src: list[int], dst: list[int], lengths: list[int]
    ) -> None:
        """Push local bytes into a peer's registered buffers (blocking)."""
        rc = self._te.batch_transfer_sync_write(session, src, dst, lengths)
        if rc != 0:
            raise RuntimeError(
                f"Mooncake batch_transfer_sync_write to {session} returned {rc} "
                f"({len(src)} blocks, {sum(lengths)} bytes)"
            )
