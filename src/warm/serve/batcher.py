"""Micro-batching: concurrent requests are gathered into one scorer call on a worker thread.

Why: a reward model's forward pass costs little more for 32 sequences than for 1 (on CPU the matrix products get
wider, on a GPU they were idle anyway), so scoring each HTTP request on its own wastes most of the hardware once
several RL workers call at the same time. Here every request's items join one queue; a collector gathers them
into micro-batches of at most `max_batch` items, waiting at most `max_wait_ms` after the oldest item arrived for
others to join, and scores each micro-batch with ONE call of `fn` on a single worker thread. Throughput therefore
grows with load, while a lone request pays at most `max_wait_ms` of extra latency.

Why a thread: torch releases the GIL inside its kernels, so the asyncio loop keeps accepting requests, answering
/health and parsing bodies while a batch runs. One thread, not a pool: torch already uses every core for one
batch, and two batches at once would only fight over them.

Order: a request's items are taken in order, possibly split over several micro-batches (a request larger than
`max_batch` always is), and its results are written back into its own slots, so each caller gets exactly its
own results in its own order, however requests were interleaved.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("warm.serve")


class BatcherClosed(RuntimeError):
    """Raised by `submit` once the batcher is shutting down (the server answers 503)."""


@dataclass(eq=False)
class _Request:
    items: Sequence[Any]
    future: asyncio.Future
    arrived: float
    results: list = field(default_factory=list)
    taken: int = 0  # items handed to micro-batches so far
    filled: int = 0  # results written back so far

    @property
    def left(self) -> int:
        return len(self.items) - self.taken


# One micro-batch is a list of segments: (request, start, stop) slices of requests' items.
_Segment = tuple[_Request, int, int]


class MicroBatcher:
    """Gathers `submit`ted items into micro-batches and scores each with one call of `fn(items) -> results`.

    `fn` runs on the worker thread and must return one result per item, in order (any sequence). If it raises,
    every request in that micro-batch is retried alone, so one bad request fails alone and the others still get
    their results; the failing request's `submit` raises the exception. Use it inside a running event loop:
    `await start()`, then `await submit(items)` from any number of tasks, then `await close()`, which stops
    taking new requests and finishes all queued work before returning (graceful shutdown drains).
    """

    def __init__(self, fn: Callable[[list], Sequence], *, max_batch: int = 64, max_wait_ms: float = 5.0) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._pending: deque[_Request] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        # Counters for /health, the tests and the load benchmark.
        self.calls = 0
        self.items_scored = 0
        self.failures = 0

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def pending_items(self) -> int:
        return sum(r.left for r in self._pending if not r.future.done())

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("MicroBatcher already started")
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-score")
        self._task = asyncio.create_task(self._run_guarded(), name="warm-batcher")

    async def submit(self, items: Sequence[Any]) -> list:
        """Results of `fn` for `items`, in order. Raises BatcherClosed when closing, or what `fn` raised."""
        if self._task is None:
            raise BatcherClosed("the micro-batcher is not running (the app's lifespan has not started)")
        if self._closing:
            raise BatcherClosed("the server is shutting down")
        if not items:
            return []
        loop = asyncio.get_running_loop()
        request = _Request(items=list(items), future=loop.create_future(), arrived=loop.time())
        request.results = [None] * len(request.items)
        self._pending.append(request)
        self._wakeup.set()
        # If the caller is cancelled (client gone), awaiting cancels the future too, and the collector skips
        # whatever of this request is still queued.
        return await request.future

    async def close(self) -> None:
        """Stop taking requests, score everything already queued, then stop the worker thread."""
        self._closing = True
        if self._task is None:
            return
        self._wakeup.set()
        await self._task
        self._executor.shutdown(wait=True)

    async def _run_guarded(self) -> None:
        # Should the collector itself ever die (a bug, not a scorer error), no caller may wait forever.
        try:
            await self._run()
        except BaseException as exc:
            self._closing = True
            for request in self._pending:
                if not request.future.done():
                    request.future.set_exception(BatcherClosed(f"the batcher stopped: {exc!r}"))
            raise

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._live_head():
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            # The wait is counted from the oldest item's arrival: after a busy spell the queue already waited
            # while the previous batch ran, so it goes at once.
            deadline = self._pending[0].arrived + self.max_wait
            while self.pending_items < self.max_batch and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            segments = self._take()
            if segments:
                await self._score(segments, retry_alone=len({id(r) for r, _, _ in segments}) > 1)

    def _live_head(self) -> bool:
        """Drop finished (cancelled or failed) requests from the head; is there work left?"""
        while self._pending and (self._pending[0].future.done() or self._pending[0].left == 0):
            self._pending.popleft()
        return bool(self._pending)

    def _take(self) -> list[_Segment]:
        """Up to max_batch items from the head of the queue, splitting the last request if it does not fit."""
        segments: list[_Segment] = []
        room = self.max_batch
        while room and self._live_head():
            request = self._pending[0]
            count = min(room, request.left)
            segments.append((request, request.taken, request.taken + count))
            request.taken += count
            room -= count
        return segments

    async def _score(self, segments: list[_Segment], retry_alone: bool) -> None:
        items = [item for request, start, stop in segments for item in request.items[start:stop]]
        self.calls += 1
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._fn, items)
            if len(results) != len(items):
                raise RuntimeError(f"the scorer returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # whatever the scorer raised goes back to its callers
            if retry_alone:
                # Find the culprit: each request's part of this batch is scored on its own.
                log.warning("a micro-batch of %d items failed (%s); retrying its requests one by one", len(items), exc)
                for request in dict.fromkeys(r for r, _, _ in segments):
                    mine = [s for s in segments if s[0] is request]
                    await self._score(mine, retry_alone=False)
                return
            self.failures += 1
            for request, _, _ in segments:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        self.items_scored += len(items)
        offset = 0
        for request, start, stop in segments:
            count = stop - start
            if not request.future.done():
                request.results[start:stop] = results[offset : offset + count]
                request.filled += count
                if request.filled == len(request.items):
                    request.future.set_result(request.results)
            offset += count
