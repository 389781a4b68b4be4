"""What the proxy's checks remember across exchanges, bounded: the first uses and first kept
answer of each Idempotency-Key (D6), and the last reads of each job (D7).

D6 is judged by what the server answered, not by the order requests reached the proxy: two
requests with one key in flight at once may be run by the server in either order, the other
one replayed. So the first answer kept for a key is the first one judged WITHOUT
`Idempotent-Replayed` (a marked replay is never kept as the first), and a marked replay is
"replayed on first use" only when no other request with its key reached the proxy before its
own answer ended (the arrival times of a key's first two requests are remembered for that).

Least recently used entries go first once a bound is reached; once a key has been forgotten
(or an exchange with a key went unjudged), no key is called new any more (a forgotten key
must not give a false alarm).

Entries also expire as the target's own memory does, so a long run holds only what the
target still keeps, whatever its traffic: a key after the idempotency TTL (`ttl`, D6: 24 h;
the proxy's `--idempotency-ttl`), a job after no read for the retention (`retention`, 7 days;
`--retention`). A key past the TTL is new again for the target too, so forgetting it is no
overflow. Both are set like the target: a mock run with `--idempotency-ttl 60` reused keys
after a minute, and a proxy that remembered them for a day would have called the fresh 202s
D6 violations.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layers_kit.conformance.judges import Answer, JobRead
from layers_kit.contract.behaviour import Call

if TYPE_CHECKING:
    from layers_kit.conformance.proxy.checks import View

IDEMPOTENCY_TTL = 24 * 3600.0  # D6: a key is remembered for 24 hours
RETENTION = 7 * 24 * 3600.0  # how long a target keeps ended jobs (the mock's --retention)
# D6: the outcomes a server keeps for a key; any other answer leaves the key unused.
KEPT_CODES = frozenset({"NOT_FOUND", "CONFLICT", "APPROVAL_REQUIRED", "BILLING_EXHAUSTED",
                        "MODERATION_BLOCKED"})


@dataclass
class _Key:
    at: float  # monotonic time of the first answer kept
    fingerprint: str
    answer: Answer | None  # the kept first answer


@dataclass
class Memory:
    """What checks remember across exchanges, bounded (least recently used goes first)."""

    max_keys: int = 100_000
    max_jobs: int = 50_000
    ttl: float = IDEMPOTENCY_TTL  # a key is forgotten after it (the target's idempotency TTL)
    retention: float = RETENTION  # a job not read for this long is forgotten
    # key scope -> when its first request and its second (None until one came) reached the proxy
    _first_use: OrderedDict[str, tuple[float, float | None]] = field(
        default_factory=OrderedDict)
    _keys: OrderedDict[str, _Key] = field(default_factory=OrderedDict)
    # job id -> its last reads: (when the answer ended, what it showed)
    _jobs: OrderedDict[str, deque[tuple[float, JobRead]]] = field(default_factory=OrderedDict)
    forgot_keys: bool = False
    # client -> its last calls, for the client rules C1-C6 (contract/behaviour.py)
    track_clients: bool = False  # only with --client-rules
    max_clients: int = 1_000
    client_window: int = 100
    _clients: OrderedDict[str, deque[Call]] = field(default_factory=OrderedDict)

    def calls_of(self, client: str) -> list[Call]:
        """The client's last calls, oldest first (at most `client_window`)."""
        return list(self._clients.get(client, ()))

    def _learn_call(self, v: View) -> None:
        if not self.track_clients:
            return
        call = v.call
        if call is None:
            return
        _append(self._clients, call.client, call, self.client_window, self.max_clients)

    def started(self, v: View) -> None:
        """A request reached the proxy (called in arrival order, before any answer is judged):
        remember when its Idempotency-Key was first used, and used again."""
        self._expire(v.ex.started)
        scope = v.key_scope
        if scope is None:
            return
        known = self._first_use.get(scope)
        if known is None:
            self._first_use[scope] = (v.ex.started, None)
            while len(self._first_use) > self.max_keys:
                self._first_use.popitem(last=False)
                self.forgot_keys = True
        elif known[1] is None:
            self._first_use[scope] = (known[0], v.ex.started)

    def seen_before(self, v: View) -> bool:
        """Could another request with this key have reached the server first? True when one
        reached the proxy before this one did, or while this one was in flight (the server
        may run either of two overlapping requests first), and once memory has overflowed
        (a forgotten key must not be called new)."""
        if self.forgot_keys:
            return True
        known = self._first_use.get(v.key_scope)
        if known is None or v.ex.started - known[0] > self.ttl:
            return False
        first, second = known
        if first < v.ex.started:
            return True
        # this one came first (or at the same instant): was a second one in flight with it?
        return second is not None and second <= max(v.ex.ended, v.ex.started)

    def first_of(self, v: View) -> _Key | None:
        entry = self._keys.get(v.key_scope) if v.key_scope else None
        if entry is not None and v.ex.started - entry.at > self.ttl:
            return None
        return entry

    def job_before(self, v: View) -> JobRead | None:
        """The latest read of this job whose answer ended before this request began (reads
        that crossed in flight prove nothing about order)."""
        job = v.job
        for ended, read in reversed(self._jobs.get(job.job_id, ()) if job else ()):
            if ended < v.ex.started:
                return read
        return None

    def _expire(self, now: float) -> None:
        """Forget, oldest first, the keys past the TTL and the jobs past the retention: the
        first-use and kept-answer tables are in time order (nothing moves to their end), the
        jobs in order of their last read."""
        while self._first_use and now - next(iter(self._first_use.values()))[0] > self.ttl:
            self._first_use.popitem(last=False)
        while self._keys and now - next(iter(self._keys.values())).at > self.ttl:
            self._keys.popitem(last=False)
        while self._jobs:
            reads = next(iter(self._jobs.values()))
            if reads and now - reads[-1][0] <= self.retention:
                break
            self._jobs.popitem(last=False)

    def learn(self, v: View) -> None:
        self._learn_call(v)  # a call without an answer counts for the client rules too
        if v.ex.status is None:
            return
        self._learn_key(v)
        self._learn_job(v)

    def _learn_key(self, v: View) -> None:
        if v.idempotency is None or v.replayed:
            return
        scope, fp = v.idempotency
        if self.first_of(v) is not None:
            return
        kept = 200 <= v.ex.status < 300 or v.error_code in KEPT_CODES
        if kept:
            self._keys[scope] = _Key(v.ex.started, fp, v.answer)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def _learn_job(self, v: View) -> None:
        # getJob's reads, and the 202 that started the job (a replayed 202 is an old answer)
        started = v.ex.status == 202 and not v.replayed
        if not ((v.operation == "getJob" and v.ex.status == 200) or started):
            return
        job = v.job
        if job is None:
            return
        _append(self._jobs, job.job_id, (v.ex.ended, job), 8, self.max_jobs)


def _append(table: OrderedDict, key: str, item: object, window: int, bound: int) -> None:
    """Append `item` to `key`'s last `window` items, made the most recently used; past `bound`
    keys, the least recently used key goes."""
    items = table.get(key)
    if items is None:
        items = table[key] = deque(maxlen=window)
    table.move_to_end(key)
    items.append(item)
    while len(table) > bound:
        table.popitem(last=False)
