"""One queue per rate-limit bucket for the checks of a run, once the target throttles it.

The contract names each operation's bucket (`x-rate-limit-class`: read, light_write,
job_start), and a target keeps the buckets per key (D13). While a bucket has never answered
`429`, the checks send as they like, several at once. Once it answers `429 RATE_LIMITED`
with `Retry-After`, every request of that key and class waits its turn, first come first
served: the request at the head waits out Retry-After and sends again (as each request did
on its own before), the others wait behind it, and it passes the turn on once answered.
So a throttled bucket sees one request at a time instead of every waiting thread at once
after each Retry-After, and no check waits longer than its place in the line: a check that
lost every race for the next token used to run out of --max-wait and end inconclusive while
another, sequential run of the same target passed it. When the line empties, the bucket is
free again.

Waiting in the line counts towards the request's --max-wait like a Retry-After does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Line:
    """The queue of one (key, rate-limit class)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._cond = threading.Condition()
        self._clock = clock
        self._next = 0  # the next ticket to hand out
        self._head = 0  # the ticket whose turn it is
        self._gone: set[int] = set()  # tickets that left before their turn
        self.throttled = False

    def join(self) -> int | None:
        """A ticket while the bucket is throttled, else None (send at once)."""
        with self._cond:
            if not self.throttled:
                return None
            return self._take()

    def _take(self) -> int:
        ticket = self._next
        self._next += 1
        return ticket

    def throttle(self, ticket: int | None) -> int:
        """A 429 came: the bucket is throttled from now on; the caller's ticket (a new one
        when it had none: it joins the line)."""
        with self._cond:
            self.throttled = True
            return self._take() if ticket is None else ticket

    def is_head(self, ticket: int) -> bool:
        with self._cond:
            return self._head == ticket

    def wait_turn(self, ticket: int, limit: float) -> float | None:
        """Wait until it is `ticket`'s turn; the seconds waited, or None when the turn did
        not come within `limit` seconds (the ticket then leaves the line)."""
        started = self._clock()
        with self._cond:
            while self._head != ticket:
                left = limit - (self._clock() - started)
                if left <= 0:
                    self._leave(ticket)
                    return None
                self._cond.wait(min(left, 1.0))
        return self._clock() - started

    def leave(self, ticket: int | None) -> None:
        """The request is answered (or gave up): the next in line goes."""
        if ticket is None:
            return
        with self._cond:
            self._leave(ticket)

    def _leave(self, ticket: int) -> None:
        if ticket == self._head:
            self._head += 1
            while self._head in self._gone:
                self._gone.discard(self._head)
                self._head += 1
        elif ticket > self._head:
            self._gone.add(ticket)
        if self._head >= self._next:  # nobody waits: the bucket is free again
            self.throttled = False
        self._cond.notify_all()


class Pacer:
    """The lines of one run, per (base URL, key, rate-limit class)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str, str], Line] = {}

    def line(self, base_url: str, key: str | None, rate_class: str | None) -> Line | None:
        if not rate_class:
            return None
        index = (base_url, key or "", rate_class)
        with self._lock:
            if index not in self._lines:
                self._lines[index] = Line()
            return self._lines[index]
