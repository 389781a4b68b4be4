"""Group commit: one thread runs the transactions that queued up meanwhile, as one batch.

Why: a store doing I/O must not run it on the event loop, but a hand-off to a thread pool per
transaction was most of the cost of a request over SQLite (measured: ~200 us per hand-off when
idle; under load each `sqlite3` call released the GIL and waited for the loop to give it back).
Here the loop queues work and one thread takes everything queued, runs it as one batch (one
commit for the lot) and wakes the loop once per batch. Under load a batch holds several
requests' transactions and journal entries; alone, a request is a batch of one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_BATCH = 64  # items per batch at most: bounds a batch's latency and a commit's size

Item = tuple[str, Any]  # ("tx", fn) or ("journal", entry)
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)


class GroupCommitter:
    """Runs `run_batch(items) -> outcomes` on its own thread; `submit` awaits one item's
    outcome. Items are run in the order they were submitted."""

    def __init__(self, run_batch: Callable[[list[Item]], list[Outcome]], name: str) -> None:
        self._run_batch = run_batch
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Item, asyncio.Future, asyncio.AbstractEventLoop]
                                       | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def submit(self, item: Item) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._ensure_thread()
        self._queue.put((item, future, loop))
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self._name,
                                                    daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = [first]
            stop = False
            while len(pending) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                pending.append(nxt)
            try:
                outcomes = self._run_batch([item for item, _, _ in pending])
            except BaseException as exc:  # the batch as a whole failed (its commit, say)
                outcomes = [(False, exc)] * len(pending)
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for (_, future, loop), outcome in zip(pending, outcomes, strict=True):
                by_loop.setdefault(loop, []).append((future, outcome))
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, settled)  # one wake-up per batch
                except RuntimeError:  # that loop is closed: nobody waits any more
                    pass
            if stop:
                return

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None


def _settle(settled: list[tuple[asyncio.Future, Outcome]]) -> None:
    for future, (ok, value) in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Batched:
    """The store protocol's entry points for a store that runs batches: `_run_batch(items)`
    runs one batch (on the calling thread), `_committer` queues for the store's own thread."""

    _committer: GroupCommitter

    def _run_batch(self, items: list[Item]) -> list[Outcome]:
        raise NotImplementedError

    def atomic(self, fn: Callable[[Any], T]) -> T:
        """One transaction on the calling thread (tools, tests, the control API): a batch of
        one."""
        return _value(self._run_batch([("tx", fn)])[0])

    async def transact(self, fn: Callable[[Any], T]) -> T:
        """`atomic`, awaited: queued for the store's thread, in a batch with others."""
        return await self._committer.submit(("tx", fn))

    def journal_append(self, entry: dict[str, Any]) -> None:
        _value(self._run_batch([("journal", entry)])[0])

    async def record(self, entry: dict[str, Any]) -> None:
        """`journal_append`, awaited: in the next batch's commit."""
        await self._committer.submit(("journal", entry))


def _value(outcome: Outcome) -> Any:
    ok, value = outcome
    if not ok:
        raise value
    return value
