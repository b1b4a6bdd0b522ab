"""The stand-in model runner: prefill and decode batches that take time and emit fixed text.

It replaces SGLang's GPU scheduler + model only. Prefill requests are batched up to the
chunked-prefill token budget and "run" for ``tokens / 1000 * prefill_ms_per_1k``; decode
advances every running request by one token per step of ``decode_ms_per_token`` (slightly
longer for bigger batches), admitting at most ``max_running_requests``. Output text is a
deterministic function of the prompt: the same prompt always gets the same answer, and it is
not inference.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .metrics import Counters
from .model import EOS_ID, PUNCTUATION, RehearsalModel

DEFAULT_PREFILL_BUDGET = 8192
DEFAULT_MAX_RUNNING = 1024


@dataclass
class GenRequest:
    """One generation request as the runner sees it."""

    rid: str
    input_ids: list[int]
    max_new_tokens: int
    ignore_eos: bool = False
    output_ids: list[int] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    finish_reason: dict | None = None
    created: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None

    @property
    def text(self) -> str:
        """Text generated so far."""
        return "".join(self.pieces)


@dataclass
class _Running:
    req: GenRequest
    plan: list[int]
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Runner:
    """Prefill and decode batch loops with timing knobs."""

    def __init__(
        self,
        model: RehearsalModel,
        counters: Counters,
        prefill_ms_per_1k: float,
        decode_ms_per_token: float,
        prefill_budget: int | None = None,
        max_running: int | None = None,
    ) -> None:
        self.model = model
        self.counters = counters
        self.prefill_ms_per_1k = prefill_ms_per_1k
        self.decode_ms_per_token = decode_ms_per_token
        self.prefill_budget = (
            prefill_budget if prefill_budget and prefill_budget > 0 else (DEFAULT_PREFILL_BUDGET)
        )
        self.max_running = max_running if max_running and max_running > 0 else DEFAULT_MAX_RUNNING
        self._prefill_q: asyncio.Queue[tuple[GenRequest, asyncio.Future[None]]] = asyncio.Queue()
        self._running: list[_Running] = []
        self._waiting: deque[_Running] = deque()
        self._work = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.last_step = time.time()
        vocab = model.tokenizer.get_vocab()
        self._word_ids = sorted(i for t, i in vocab.items() if t.isalpha() and t.islower())
        self._punct_ids = [vocab[p] for p in (".", ",") if p in vocab]
        self._piece = {i: t for t, i in vocab.items()}
        counters.gauges["num_running_reqs"] = lambda: float(len(self._running))
        counters.gauges["num_queue_reqs"] = lambda: float(
            len(self._waiting) + self._prefill_q.qsize()
        )

    def start(self) -> None:
        """Start the batch loops."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._prefill_loop()),
            loop.create_task(self._decode_loop()),
        ]

    async def stop(self) -> None:
        """Cancel the batch loops."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def load(self) -> dict[str, int]:
        """Load figures as SGLang's /get_load reports them."""
        return {
            "num_reqs": len(self._running) + len(self._waiting) + self._prefill_q.qsize(),
            "num_waiting_reqs": len(self._waiting) + self._prefill_q.qsize(),
            "num_tokens": sum(len(r.req.input_ids) + len(r.req.output_ids) for r in self._running),
        }

    # ------------------------------------------------------------------ prefill
    async def prefill(self, req: GenRequest) -> None:
        """Run the request's prefill (batched with others); returns when it is done."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._prefill_q.put((req, fut))
        await fut
        self.counters.inc("prompt_tokens", len(req.input_ids))

    async def _prefill_loop(self) -> None:
        while True:
            batch = [await self._prefill_q.get()]
            tokens = len(batch[0][0].input_ids)
            while not self._prefill_q.empty() and tokens < self.prefill_budget:
                item = self._prefill_q.get_nowait()
                batch.append(item)
                tokens += len(item[0].input_ids)
            await asyncio.sleep(tokens / 1000.0 * self.prefill_ms_per_1k / 1000.0)
            self.last_step = time.time()
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    # ------------------------------------------------------------------ decode
    def plan(self, req: GenRequest) -> list[int]:
        """The deterministic output token ids for a request (ends with EOS unless ignored)."""
        h = int.from_bytes(
            hashlib.blake2b(
                repr((self.model.seed, req.input_ids)).encode(), digest_size=8
            ).digest(),
            "little",
        )
        natural = 16 + h % 48
        n = req.max_new_tokens if req.ignore_eos else min(req.max_new_tokens, natural)
        ids: list[int] = []
        sentence = 5 + h % 4
        for k in range(n):
            if self._punct_ids and k % (sentence + 1) == sentence:
                ids.append(self._punct_ids[(h >> 3) % len(self._punct_ids) if k % 3 else 0])
            else:
                ids.append(self._word_ids[(h + k * 7919 + (h >> 17)) % len(self._word_ids)])
        if not req.ignore_eos and n == natural and n < req.max_new_tokens:
            ids.append(EOS_ID)
        return ids

    def _append(self, req: GenRequest, tok: int) -> None:
        if tok == EOS_ID:
            return
        piece = self._piece[tok]
        if req.pieces and self._piece[tok] not in PUNCTUATION:
            piece = " " + piece
        req.pieces.append(piece)

    async def decode(self, req: GenRequest) -> AsyncIterator[int]:
        """Yield the request's new output token count after every decode step it gets."""
        run = _Running(req=req, plan=self.plan(req))
        if not run.plan:
            req.finish_reason = {"type": "length", "length": 0}
            return
        if len(self._running) < self.max_running:
            self._running.append(run)
        else:
            self._waiting.append(run)
        self._work.set()
        try:
            while req.finish_reason is None:
                await run.wake.wait()
                run.wake.clear()
                yield len(req.output_ids)
        finally:
            if run in self._running:
                self._running.remove(run)
            elif run in self._waiting:
                self._waiting.remove(run)

    async def _decode_loop(self) -> None:
        while True:
            if not self._running:
                self._work.clear()
                await self._work.wait()
                continue
            load = len(self._running) / self.max_running
            await asyncio.sleep(self.decode_ms_per_token * (1.0 + 0.5 * load) / 1000.0)
            self.last_step = time.time()
            now = time.perf_counter()
            done: list[_Running] = []
            for run in self._running:
                self._step(run, now)
                if run.req.finish_reason is not None:
                    done.append(run)
                run.wake.set()
            for run in done:
                self._running.remove(run)
                self.counters.inc("generation_tokens", len(run.req.output_ids))
            while self._waiting and len(self._running) < self.max_running:
                self._running.append(self._waiting.popleft())

    def _step(self, run: _Running, now: float) -> None:
        req = run.req
        k = len(req.output_ids)
        tok = run.plan[k]
        req.output_ids.append(tok)
        self._append(req, tok)
        if req.first_token_at is None:
            req.first_token_at = now
        if tok == EOS_ID:
            req.finish_reason = {"type": "stop", "matched": EOS_ID}
        elif len(req.output_ids) >= len(run.plan):
            req.finish_reason = {"type": "length", "length": req.max_new_tokens}
