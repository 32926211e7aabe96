"""The micro-batcher alone, with plain functions for a scorer: batching, order, splitting, failures, drain."""

import asyncio
import threading
import time

import pytest

from warm.serve.batcher import BatcherClosed, MicroBatcher


class Recorder:
    """fn(items) -> [item * 10]; records each call's items and the thread it ran on."""

    def __init__(self, delay: float = 0.0, fail_on=None):
        self.calls: list[list] = []
        self.threads: set[str] = set()
        self.delay = delay
        self.fail_on = fail_on

    def __call__(self, items):
        self.calls.append(list(items))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot score {self.fail_on}")
        return [x * 10 for x in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_concurrent_requests_share_calls_and_keep_their_order():
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=50)
        await batcher.start()
        # 10 requests of 3 distinct items each, all queued before the collector looks: 30 items, batches of 8.
        requests = [[100 * r + i for i in range(3)] for r in range(10)]
        results = await asyncio.gather(*(batcher.submit(items) for items in requests))
        await batcher.close()
        return requests, results, batcher

    requests, results, batcher = run(main())
    assert results == [[x * 10 for x in items] for items in requests]
    assert [len(c) for c in fn.calls] == [8, 8, 8, 6]  # requests were split across micro-batches to fill them
    assert batcher.calls == 4 and batcher.items_scored == 30
    assert all(name.startswith("warm-score") for name in fn.threads)  # never on the event loop's thread


def test_a_request_larger_than_max_batch_is_split_in_order():
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=0)
        await batcher.start()
        out = await batcher.submit(list(range(11)))
        assert await batcher.submit([]) == []
        await batcher.close()
        return out

    assert run(main()) == [x * 10 for x in range(11)]
    assert [len(c) for c in fn.calls] == [4, 4, 3]


def test_lone_request_waits_at_most_max_wait():
    fn = Recorder()

    async def main():
        batcher = MicroBatcher(fn, max_batch=64, max_wait_ms=30)
        await batcher.start()
        start = time.perf_counter()
        await batcher.submit([1])
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    assert 0.02 < run(main()) < 1.0


def test_a_failing_request_fails_alone_and_the_batcher_keeps_serving():
    fn = Recorder(fail_on=13)

    async def main():
        batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=50)
        await batcher.start()
        good, bad, other = await asyncio.gather(
            batcher.submit([1, 2]), batcher.submit([12, 13]), batcher.submit([3]), return_exceptions=True)
        after = await batcher.submit([4])
        await batcher.close()
        return good, bad, other, after, batcher

    good, bad, other, after, batcher = run(main())
    assert good == [10, 20] and other == [30] and after == [40]
    assert isinstance(bad, ValueError) and "13" in str(bad)
    assert fn.calls[0] == [1, 2, 12, 13, 3]  # one batch, retried request by request after it failed
    assert sorted(map(tuple, fn.calls[1:4])) == [(1, 2), (3,), (12, 13)]
    assert batcher.failures == 1


def test_close_drains_queued_work_then_refuses():
    fn = Recorder(delay=0.05)

    async def main():
        batcher = MicroBatcher(fn, max_batch=2, max_wait_ms=1000)
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit([i, i + 1])) for i in range(0, 10, 2)]
        await asyncio.sleep(0)  # the submits are queued; most of their work is not yet scored
        await batcher.close()  # does not wait max_wait_ms, does not drop anything
        assert all(t.done() for t in tasks)
        with pytest.raises(BatcherClosed):
            await batcher.submit([99])
        return [t.result() for t in tasks]

    assert run(main()) == [[i * 10, (i + 1) * 10] for i in range(0, 10, 2)]
    assert sum(len(c) for c in fn.calls) == 10


def test_event_loop_stays_responsive_while_a_batch_runs():
    fn = Recorder(delay=0.5)

    async def main():
        batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=0)
        await batcher.start()
        slow = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await asyncio.sleep(0.01)  # would take ~0.45 s if the scorer held the loop
        tick = time.perf_counter() - start
        assert not slow.done()
        await slow
        await batcher.close()
        return tick

    assert run(main()) < 0.2


def test_cancelled_requests_are_skipped():
    fn = Recorder(delay=0.1)

    async def main():
        batcher = MicroBatcher(fn, max_batch=2, max_wait_ms=0)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([1, 2]))
        await asyncio.sleep(0.02)  # [1, 2] is being scored
        gone = asyncio.create_task(batcher.submit([3, 4]))
        kept = asyncio.create_task(batcher.submit([5]))
        await asyncio.sleep(0)
        gone.cancel()  # the client went away before its turn
        assert await first == [10, 20] and await kept == [50]
        await batcher.close()

    run(main())
    assert [3, 4] not in fn.calls and all(3 not in c for c in fn.calls)


def test_wrong_result_count_is_an_error():
    async def main():
        batcher = MicroBatcher(lambda items: [0], max_batch=4, max_wait_ms=0)
        await batcher.start()
        with pytest.raises(RuntimeError, match="1 results for 2 items"):
            await batcher.submit([1, 2])
        await batcher.close()

    run(main())
