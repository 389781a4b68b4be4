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

The Schemathesis phase runs in a process of its own on the same key. While a line of the
checks is throttled, the pacer keeps a file named after its class in `signal_dir`; the
phase's hooks hold back their requests of that class while it is there (schema_phase.HOOKS).
So the checks, each a few requests that must land within --max-wait, go before the phase's
hundreds, which have the phase's own time budget: without that, the phase, which sends its
next request the moment it got a token, was always first to wake after a Retry-After, and a
check waiting behind it ran out of --max-wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


class Line:
    """The queue of one (key, rate-limit class)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 signal: Callable[[bool], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._clock = clock
        self._signal = signal  # told when the line becomes throttled (True) and free (False)
        self._next = 0  # the next ticket to hand out
        self._head = 0  # the ticket whose turn it is
        self._gone: set[int] = set()  # tickets that left before their turn
        self.throttled = False
        self.sent = 0  # requests of this key and class sent (answered or not)

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
            if not self.throttled and self._signal is not None:
                self._signal(True)
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

    def count(self) -> None:
        """One more request of this key and class went out."""
        with self._cond:
            self.sent += 1

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
        if self._head >= self._next and self.throttled:  # nobody waits: free again
            self.throttled = False
            if self._signal is not None:
                self._signal(False)
        self._cond.notify_all()


class Pacer:
    """The lines of one run, per (base URL, key, rate-limit class); with `signal_dir`, the
    file `signal_dir/<class>` exists while a line of that class is throttled."""

    def __init__(self, signal_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str, str], Line] = {}
        self.signal_dir = signal_dir
        self._throttled: dict[str, int] = {}  # class -> lines of it throttled

    def line(self, base_url: str, key: str | None, rate_class: str | None) -> Line | None:
        if not rate_class:
            return None
        index = (base_url, key or "", rate_class)
        with self._lock:
            if index not in self._lines:
                self._lines[index] = Line(signal=lambda on, c=rate_class: self._mark(c, on))
            return self._lines[index]

    def sent(self, key: str, rate_class: str) -> int:
        """The requests of `key` and `rate_class` sent so far (at any base URL)."""
        with self._lock:
            return sum(line.sent for (_, k, c), line in self._lines.items()
                       if k == key and c == rate_class)

    def _mark(self, rate_class: str, on: bool) -> None:
        if self.signal_dir is None:
            return
        with self._lock:
            n = self._throttled.get(rate_class, 0) + (1 if on else -1)
            self._throttled[rate_class] = max(0, n)
            marker = self.signal_dir / rate_class
            try:
                if n > 0:
                    marker.touch()
                else:
                    marker.unlink(missing_ok=True)
            except OSError:
                pass  # the phase then only paces on its own 429s, as before
