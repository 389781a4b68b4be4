"""The default store: one process, documents kept as JSON text so nothing is shared.

Expired documents are forgotten a few at a time: a heap orders the expiries, and each
transaction drops those already due. (A sweep of the whole store every 1,000 writes cost a pause
that grew with the store: tens of milliseconds in the benchmark, at the p99.)

Each document is kept as an exact-size copy of the bytes `orjson.dumps` returned: orjson
(3.13 here) hands back a bytes object still holding its 8 KiB write buffer, whatever the
length of the JSON (`sys.getsizeof` shows the length, tracemalloc and the RSS the 8 KiB). Kept
as they came, a 600-byte container cost 8 KiB of RSS, every stored document about twelve
times its size, and the soak's RSS grew 2.3 MiB per 10,000 requests as the store filled up
to its bounds; the copy costs about 0.3 microseconds per written document.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import orjson

from layers_kit.mock.store.base import WALL, BufferedTx, Clock, Doc, Inline

T = TypeVar("T")
_DROP_PER_TX = 64  # expired documents forgotten per transaction at most


def _compact(text: bytes) -> bytes:
    """An exact-size copy (orjson's bytes keep their whole write buffer: see the docstring)."""
    return bytes(memoryview(text))


class _MemoryTx(BufferedTx):
    def __init__(self, data: dict[tuple[str, str], tuple[bytes, float | None]],
                 now: float) -> None:
        super().__init__()
        self._data = data
        self._now = now

    def _read(self, kind: str, key: str) -> Doc | None:
        entry = self._data.get((kind, key))
        if entry is None or (entry[1] is not None and entry[1] <= self._now):
            return None
        return orjson.loads(entry[0])


class MemoryStore(Inline):
    shared = False

    def __init__(self, *, journal_size: int, now: Clock = WALL) -> None:
        self.url = "memory"
        self.now = now
        self._data: dict[tuple[str, str], tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()
        self._journal: deque[Doc] = deque(maxlen=journal_size)
        self._expiries: list[tuple[float, tuple[str, str]]] = []  # a heap; stale entries allowed

    def atomic(self, fn: Callable[[_MemoryTx], T]) -> T:
        with self._lock:
            now = self.now()
            tx = _MemoryTx(self._data, now)
            result = fn(tx)
            for k, entry in tx.writes.items():
                if entry is None:
                    self._data.pop(k, None)
                else:
                    text, ttl = entry
                    expires = None if ttl is None else now + ttl
                    self._data[k] = (_compact(text), expires)
                    if expires is not None:
                        heapq.heappush(self._expiries, (expires, k))
            self._forget_expired(now)
            return result

    def _peek(self, kind: str, key: str) -> Doc | None:
        return _MemoryTx(self._data, self.now())._read(kind, key)

    def _forget_expired(self, now: float) -> None:
        heap = self._expiries
        for _ in range(_DROP_PER_TX):
            if not heap or heap[0][0] > now:
                return
            expires, k = heapq.heappop(heap)
            entry = self._data.get(k)
            if entry is not None and entry[1] == expires:  # not rewritten since
                del self._data[k]

    def journal_append(self, entry: Doc) -> None:
        self._journal.append(dict(entry))

    def journal(self, limit: int = 100) -> list[Doc]:
        return [dict(e) for e in list(self._journal)[::-1][:limit]]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._expiries.clear()
            self._journal.clear()

    def close(self) -> None:
        pass
