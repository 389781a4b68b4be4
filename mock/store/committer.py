"""Group commit: one thread runs the transactions that queued up meanwhile, as one batch.

Why: a store doing I/O must not run it on the event loop, but a hand-off to a thread pool per
transaction was most of the cost of a request over SQLite (measured: ~200 us per hand-off when
idle; under load each `sqlite3` call released the GIL and waited for the loop to give it back).
Here the loop queues work and one thread takes everything queued, runs it as one batch (one
commit for the lot) and wakes the loop once per batch. Under load a batch holds several
requests' transactions and journal entries; alone, a request is a batch of one.

Bounded under a stall. The loop waits for an item at most `timeout` seconds (the store
timeout): then the request gets `StoreUnavailable` (503 INTERNAL with Retry-After), and an
item the thread has not started yet is abandoned (skipped when its turn comes). While the
store is stalled (a wait timed out, or the last batch failed for want of the store, and no
batch succeeded since) journal entries are queued without waiting, so a request that needs no
store (`/openapi.yaml`) never waits on one. The queue holds at most `max_queue` items: past
it, a transaction is refused at once (503) and a journal entry dropped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from layers_kit.mock.store.base import STORE_TIMEOUT, StoreUnavailable

T = TypeVar("T")
MAX_BATCH = 64  # items per batch at most: bounds a batch's latency and a commit's size
MAX_QUEUE = 10_000  # items waiting at most; past it the store answers 503 at once
JOURNAL_WAIT = 0.5  # seconds a response waits for its journal entry at most

Item = tuple[str, Any]  # ("tx", fn) or ("journal", entry)
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)


class _Ticket:
    """One queued item's fate: started by the thread, or abandoned by its waiter first."""

    __slots__ = ("abandoned", "started")

    def __init__(self) -> None:
        self.started = False
        self.abandoned = False


class GroupCommitter:
    """Runs `run_batch(items) -> outcomes` on its own thread; `submit` awaits one item's
    outcome, at most `timeout` seconds. Items are run in the order they were submitted."""

    def __init__(self, run_batch: Callable[[list[Item]], list[Outcome]], name: str, *,
                 timeout: float = STORE_TIMEOUT, max_queue: int = MAX_QUEUE) -> None:
        self._run_batch = run_batch
        self._name = name
        self.timeout = timeout
        self.max_queue = max_queue
        self._queue: queue.SimpleQueue[tuple[Item, asyncio.Future | None,
                                             asyncio.AbstractEventLoop, _Ticket] | None] = \
            queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._tickets = threading.Lock()  # started / abandoned, decided once per item
        self.stalled = False  # a wait timed out or a batch lost the store; none succeeded since
        self.dropped_journal = 0  # journal entries dropped (queue full)

    def _unavailable(self, why: str) -> StoreUnavailable:
        return StoreUnavailable(f"{self._name.removeprefix('store-')}: {why}")

    async def submit(self, item: Item, *, wait: bool = True,
                     timeout: float | None = None) -> Any:
        """Queue an item and await its outcome (StoreUnavailable after the timeout). With
        `wait=False` the item is queued and nobody awaits it (a journal entry while the store
        is stalled)."""
        if self._queue.qsize() >= self.max_queue:
            if item[0] == "journal":
                self.dropped_journal += 1
                return None
            raise self._unavailable(f"{self.max_queue} operations already wait for it")
        loop = asyncio.get_running_loop()
        ticket = _Ticket()
        self._ensure_thread()
        if not wait:
            self._queue.put((item, None, loop, ticket))
            return None
        future = loop.create_future()
        self._queue.put((item, future, loop, ticket))
        limit = self.timeout if timeout is None else timeout
        # A timer that fails the future, not asyncio.wait_for(asyncio.shield(...)): those cost
        # about 12-18 us more per item on the loop (measured: 9 against 21-27 us for a future
        # settled at once), and a request over SQLite or Redis waits for two or three items.
        timer = loop.call_later(limit, self._expire, future, ticket, limit)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, future: asyncio.Future, ticket: _Ticket, limit: float) -> None:
        """The item's time is up (on the loop): the waiter gets StoreUnavailable; an item the
        thread has not started is abandoned (skipped when its turn comes)."""
        if future.done():
            return
        with self._tickets:
            if not ticket.started:
                ticket.abandoned = True  # never run: the client is told 503
        if limit >= self.timeout:
            self.stalled = True
        future.set_exception(self._unavailable(f"no answer within {limit:g} s"))

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self._name,
                                                    daemon=True)
                    self._thread.start()

    def _take(self, entry) -> bool:
        """Claim an item for the batch; False when its waiter gave up already."""
        with self._tickets:
            if entry[3].abandoned:
                return False
            entry[3].started = True
            return True

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = [first] if self._take(first) else []
            stop = False
            while len(pending) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if self._take(nxt):
                    pending.append(nxt)
            if not pending:
                if stop:
                    return
                continue
            try:
                outcomes = self._run_batch([item for item, _, _, _ in pending])
                self.stalled = False
            except BaseException as exc:  # the batch as a whole failed (its commit, say)
                if isinstance(exc, StoreUnavailable):
                    self.stalled = True
                outcomes = [(False, exc)] * len(pending)
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for (_, future, loop, _), outcome in zip(pending, outcomes, strict=True):
                if future is not None:
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


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _settle(settled: list[tuple[asyncio.Future, Outcome]]) -> None:
    for future, (ok, value) in settled:
        if future.done():  # cancelled, or its time ran out (`_expire`): nobody waits
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

    async def peek(self, kind: str, key: str) -> Any:
        """A read-only transaction in the next batch, so a cheap check (a request's armed
        faults) costs no hand-off or round trip of its own: the document comes from the
        store's process cache, valid for that batch (SQLite: its data version; Redis: checked
        by the batch's commit script). A read on the event loop made each SQLite call give up
        the GIL to the store's thread (10.6 % of the loop's samples under wrk; getJob 1796-1839
        -> 1872-1884 req/s in alternating runs), and a GET on a thread cost Redis a round trip.
        A locked or stalled store makes it wait at most the store timeout, as any
        transaction."""
        return await self.transact(lambda tx: tx.get(kind, key))

    def journal_append(self, entry: dict[str, Any]) -> None:
        _value(self._run_batch([("journal", entry)])[0])

    async def record(self, entry: dict[str, Any]) -> None:
        """`journal_append`, awaited: in the next batch's commit, waited for at most
        JOURNAL_WAIT seconds, and not at all while the store is stalled."""
        committer = self._committer
        await committer.submit(("journal", entry), wait=not committer.stalled,
                               timeout=min(JOURNAL_WAIT, committer.timeout))

    async def call(self, fn: Callable[[], T]) -> T:
        """A blocking store call (reset, the journal's read) on a thread of its own, awaited
        at most the store timeout: the control API never blocks the event loop."""
        return await off_loop(fn, self._committer.timeout, self._committer._name)


_CALLS: Any = None  # the executor of blocking store calls (made on first use)
_CALLS_LOCK = threading.Lock()


async def off_loop(fn: Callable[[], T], timeout: float, name: str) -> T:
    """Run `fn` on a small pool of threads (4: a stall pins at most those) and await it at
    most `timeout` seconds; StoreUnavailable after that (the call may still finish)."""
    global _CALLS
    if _CALLS is None:
        with _CALLS_LOCK:
            if _CALLS is None:
                from concurrent.futures import ThreadPoolExecutor

                _CALLS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-call")
    future = asyncio.get_running_loop().run_in_executor(_CALLS, fn)
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        future.add_done_callback(_consume)  # its outcome, when it comes, is nobody's
        raise StoreUnavailable(f"{name.removeprefix('store-')}: no answer within "
                               f"{timeout:g} s") from None


def _value(outcome: Outcome) -> Any:
    ok, value = outcome
    if not ok:
        raise value
    return value
