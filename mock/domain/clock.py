"""Time for jobs (D7): real time, or a manual clock moved only through the control API.

The manual clock's reading lives in the store, so that every worker sharing the store sees the
same time.
"""

from __future__ import annotations

import time
from typing import Protocol

from layers_kit.mock.store.base import Store, Tx


class Clock(Protocol):
    def now(self) -> float: ...
    def now_in(self, tx: Tx) -> float:
        """The reading, taken inside the caller's transaction (no transaction of its own)."""
    def advance(self, seconds: float) -> float: ...
    def reset(self) -> None: ...


class RealClock:
    """Wall-clock time; `advance` is refused because real time cannot be moved."""

    kind = "real"

    def now(self) -> float:
        return time.time()

    def now_in(self, tx: Tx) -> float:
        return time.time()

    def advance(self, seconds: float) -> float:
        raise ValueError("the clock is real; start the mock with --clock manual to move it")

    def reset(self) -> None:
        pass


class ManualClock:
    """Starts at the real time of the last reset and moves only when told to."""

    kind = "manual"

    def __init__(self, store: Store) -> None:
        self._store = store

    def now(self) -> float:
        return self._store.atomic(self.now_in)

    def now_in(self, tx: Tx) -> float:
        doc = tx.get("clock", "now")
        if doc is None:  # never set (a store seeded by a real-clock mock): start from now
            doc = {"t": time.time()}
            tx.put("clock", "now", doc)
        return float(doc["t"])

    def advance(self, seconds: float) -> float:
        def move(tx) -> float:
            doc = tx.get("clock", "now") or {"t": time.time()}
            doc["t"] = float(doc["t"]) + seconds
            tx.put("clock", "now", doc)
            return doc["t"]

        return self._store.atomic(move)

    def reset(self) -> None:
        start = time.time()
        self._store.atomic(lambda tx: tx.put("clock", "now", {"t": start}))


_last: tuple[int, str] = (-1, "")  # (second, its date and time): iso's one-entry cache


def iso(t: float) -> str:
    """ISO-8601 in UTC with milliseconds and Z, as the platform writes timestamps.

    A request formats about five timestamps, nearly always within one second: the date and
    time part is kept for the last second seen (gmtime and strftime were 5 % of a regenerate).
    """
    global _last
    ms = int(t * 1000)
    second = ms // 1000
    last = _last  # one tuple, read and replaced whole: safe across the store's threads
    if last[0] != second:
        last = _last = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{last[1]}.{ms % 1000:03d}Z"
