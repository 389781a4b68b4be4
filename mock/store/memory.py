"""The default store: one process, documents kept as JSON text so nothing is shared."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import orjson

from mock.store.base import WALL, BufferedTx, Clock, Doc, Inline

T = TypeVar("T")
_SWEEP_EVERY = 1000  # writes between sweeps of expired documents


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
        self._writes_since_sweep = 0

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
                    self._data[k] = (text, None if ttl is None else now + ttl)
            self._writes_since_sweep += len(tx.writes)
            if self._writes_since_sweep >= _SWEEP_EVERY:
                self._sweep()
            return result

    def _peek(self, kind: str, key: str) -> Doc | None:
        return _MemoryTx(self._data, self.now())._read(kind, key)

    def _sweep(self) -> None:
        now = self.now()
        for k in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[k]
        self._writes_since_sweep = 0

    def journal_append(self, entry: Doc) -> None:
        self._journal.append(dict(entry))

    def journal(self, limit: int = 100) -> list[Doc]:
        return [dict(e) for e in list(self._journal)[::-1][:limit]]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._journal.clear()

    def close(self) -> None:
        pass
