"""The store protocol every backend implements.

All state is JSON documents addressed by (kind, key). Every read-modify-write runs inside
`Store.atomic(fn)`: `fn` gets a transaction, reads and writes through it, and its writes land
all together or not at all. A backend may run `fn` more than once when a concurrent writer got
in first (Redis's optimistic transactions), so `fn` must do nothing but read and write the
transaction. No caller ever shares a Python object with the store: documents are copied in and
out, so the memory store behaves like the others.

The web layer never calls a backend's I/O on the event loop: it awaits `transact(fn)` and
`record(entry)`, which the memory store runs inline (no I/O), and the SQLite and Redis stores
queue for a thread of their own that runs them in batches (`committer.GroupCommitter`).
Expiry reads the store's `now` callable (time.time unless a test injects a clock), so TTL tests
need not wait on the wall clock.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from layers_kit.mock.domain.errors import ApiError

T = TypeVar("T")

STORE_TIMEOUT = 2.0  # seconds a store call may take before the request gets a 503 (default)


class StoreUnavailable(ApiError):
    """The store did not answer in time (a paused or unreachable Redis, a SQLite lock held too
    long). The request gets a bounded answer, 503 INTERNAL with Retry-After, instead of
    waiting without end; D5 names no other code for it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"The mock's store did not answer in time ({what}); retry shortly.",
                         code="INTERNAL", status=503, headers={"Retry-After": "1"})
Doc = dict[str, Any]

JOURNAL_SIZE = 1000  # D9 journal: a ring of this many entries at most


def make_room(cache: dict, incoming: int, size: int) -> None:
    """Bound a process's document cache at `size` entries: past it, the oldest entries (in
    order of insertion) are forgotten until half of it is left, where the whole cache used to
    be emptied at once. Emptied, every document a regenerate reads missed together (a SELECT
    each over SQLite, a GET round trip each over Redis: about two per regenerate in a
    sequential run over 2,000 containers, measured); the documents read by every request (the
    org, its deadline index, the project) now stay."""
    if len(cache) + incoming <= size:
        return
    for key in list(itertools.islice(cache, len(cache) + incoming - size // 2)):
        del cache[key]


class Tx(Protocol):
    def get(self, kind: str, key: str) -> Doc | None: ...
    def put(self, kind: str, key: str, doc: Doc, ttl: float | None = None) -> None:
        """Write a document; with `ttl` (seconds) it expires and is gone after that."""
    def delete(self, kind: str, key: str) -> None: ...


class BufferedTx:
    """Writes wait in the transaction until commit; reads see them first.

    Backends subclass it and implement `_read(kind, key)` (None when absent or expired).
    """

    def __init__(self) -> None:
        self.writes: dict[tuple[str, str], tuple[bytes, float | None] | None] = {}

    def _read(self, kind: str, key: str) -> Doc | None:
        raise NotImplementedError

    def get(self, kind: str, key: str) -> Doc | None:
        k = (kind, key)
        if k in self.writes:
            entry = self.writes[k]
            return None if entry is None else orjson.loads(entry[0])
        return self._read(kind, key)

    def put(self, kind: str, key: str, doc: Doc, ttl: float | None = None) -> None:
        """`ttl` is kept as given (seconds); each backend turns it into its own expiry."""
        self.writes[(kind, key)] = (orjson.dumps(doc), ttl)

    def delete(self, kind: str, key: str) -> None:
        self.writes[(kind, key)] = None


class Nested(BufferedTx):
    """A transaction inside another: reads see the outer one, writes reach it only on
    `commit()`. An operation refused part-way (an ApiError) so leaves the outer transaction as
    it was, and the caller may still write there (idempotency keeps the refusal: D6) without a
    second transaction."""

    def __init__(self, outer: Tx) -> None:
        super().__init__()
        self._outer = outer

    def _read(self, kind: str, key: str) -> Doc | None:
        return self._outer.get(kind, key)

    def commit(self) -> None:
        outer = self._outer
        if isinstance(outer, BufferedTx):  # the same encoded bytes: no second encoding
            outer.writes.update(self.writes)
            return
        for (kind, key), entry in self.writes.items():
            if entry is None:
                outer.delete(kind, key)
            else:
                outer.put(kind, key, orjson.loads(entry[0]), ttl=entry[1])


class Store(Protocol):
    url: str
    shared: bool  # True when several processes may use it at once

    def atomic(self, fn: Callable[[Tx], T]) -> T: ...
    async def transact(self, fn: Callable[[Tx], T]) -> T:
        """`atomic`, awaited: off the event loop when the backend does I/O."""
    async def record(self, entry: Doc) -> None:
        """`journal_append`, awaited: off the event loop when the backend does I/O."""
    async def peek(self, kind: str, key: str) -> Doc | None:
        """One document read outside any transaction (a cheap check, e.g. armed faults)."""
    async def call(self, fn: Callable[[], T]) -> T:
        """A blocking call on the store (reset, the journal), awaited off the event loop and
        at most the store timeout (StoreUnavailable after it)."""
    def journal_append(self, entry: Doc) -> None: ...
    def journal(self, limit: int = 100) -> list[Doc]:
        """The newest `limit` entries, newest first."""
    def clear(self) -> None:
        """Remove every document and journal entry (used by reset before seeding again)."""
    def close(self) -> None: ...


class Inline:
    """For a store without I/O: its transactions run on the loop, they never wait."""

    async def transact(self, fn: Callable[[Tx], T]) -> T:
        return self.atomic(fn)  # type: ignore[attr-defined]

    async def record(self, entry: Doc) -> None:
        self.journal_append(entry)  # type: ignore[attr-defined]

    async def peek(self, kind: str, key: str) -> Doc | None:
        return self._peek(kind, key)  # type: ignore[attr-defined]

    async def call(self, fn: Callable[[], T]) -> T:
        return fn()


Clock = Callable[[], float]
WALL: Clock = time.time


def open_store(url: str, *, journal_size: int = JOURNAL_SIZE, now: Clock = WALL,
               timeout: float = STORE_TIMEOUT) -> Store:
    """A store from its URL: `memory`, `sqlite:///path.db` or `redis://host:port/db`.

    `now` is the clock of expiry (Redis expires keys on its own clock and ignores it);
    `timeout` the seconds a request waits for the store before its 503 (none for memory).
    """
    if url in ("memory", "memory://"):
        from layers_kit.mock.store.memory import MemoryStore

        return MemoryStore(journal_size=journal_size, now=now)
    if url.startswith("sqlite:///"):
        from layers_kit.mock.store.sqlite import SqliteStore

        return SqliteStore(url, journal_size=journal_size, now=now, timeout=timeout)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from layers_kit.mock.store.redis import RedisStore

        return RedisStore(url, journal_size=journal_size, timeout=timeout)
    raise ValueError(
        f"unknown store {url!r}: use memory, sqlite:///path/to/file.db or redis://host:port/db"
    )
