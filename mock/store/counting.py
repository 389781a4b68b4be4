"""A store wrapper that counts what operations cost: documents read and written, and bytes.

For tests and the soak: "the cost of generate does not depend on the project's size" is a
statement about store operations, which a count shows exactly where a timer only suggests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from layers_kit.mock.store.base import Doc, Store, Tx

T = TypeVar("T")


@dataclass
class Counts:
    reads: int = 0
    writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


class _CountingTx:
    def __init__(self, inner: Tx, counts: Counts) -> None:
        self._inner, self._counts = inner, counts

    def get(self, kind: str, key: str) -> Doc | None:
        doc = self._inner.get(kind, key)
        self._counts.reads += 1
        if doc is not None:
            self._counts.bytes_read += len(orjson.dumps(doc))
        return doc

    def put(self, kind: str, key: str, doc: Doc, ttl: float | None = None) -> None:
        self._counts.writes += 1
        self._counts.bytes_written += len(orjson.dumps(doc))
        self._inner.put(kind, key, doc, ttl=ttl)

    def delete(self, kind: str, key: str) -> None:
        self._counts.writes += 1
        self._inner.delete(kind, key)


class CountingStore:
    """Delegates to `inner`; `counts` grows with every read and write through `atomic`."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.counts = Counts()

    def atomic(self, fn: Callable[[Any], T]) -> T:
        return self.inner.atomic(lambda tx: fn(_CountingTx(tx, self.counts)))

    async def transact(self, fn: Callable[[Any], T]) -> T:
        return await self.inner.transact(lambda tx: fn(_CountingTx(tx, self.counts)))

    def take(self) -> Counts:
        """The counts so far, and start again from zero."""
        out, self.counts = self.counts, Counts()
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
