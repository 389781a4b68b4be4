"""Judges each exchange with every check, in a process of its own, in the order the proxy saw
them.

openapi-core costs about a millisecond of CPU per exchange; on the forwarding side's thread (or
another thread of its process, under the GIL) that time would be added to the answers. So the
forwarding side only hands over the request's arrival and then the finished exchange; one
worker process judges them in order (it keeps the checks' memory) and sends back a `Verdict`,
which the proxy adds to its ledger, so `/__proxy/violations` answers at once (with how many
hand-overs are still `pending`, and the most there ever were, `pendingPeak`).

Hand-overs travel in batches: while one batch is with the judge, new ones gather, and go
together when it comes back (at most `MAX_BATCH` at a time). Each batch costs the forwarding
process a wake-up of its executor's threads, which wait for the GIL behind the busy event
loop; one such wake-up per exchange (two, counting arrivals) capped how fast the judge was fed,
and in a soak it sat a third idle while 17 % of exchanges went unjudged (bench/README.md).

At most `MAX_PENDING` hand-overs (arrivals and finished exchanges alike) and
`MAX_PENDING_BYTES` of bodies wait for the judge, exactly: past either bound an exchange is
forwarded but not judged (counted as `unjudged`; when its arrival could not be handed over,
neither is its end), so memory stays bounded under any load. An exchange with an
Idempotency-Key that the judge never saw arrive makes it stop calling any key new (as a
forgotten key does), so that no unjudged request causes a false alarm. The reports say how
many exchanges went unjudged, and a run with more than `--max-unjudged` percent of them ends
"could not judge" (exit 2).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from layers_kit.conformance.contract import Contract
from layers_kit.conformance.proxy.checks import CHECKS, View
from layers_kit.conformance.proxy.exchange import Exchange
from layers_kit.conformance.proxy.ledger import Ledger, Verdict
from layers_kit.conformance.proxy.memory import IDEMPOTENCY_TTL, RETENTION, Memory
from layers_kit.contract.behaviour import RULES as CLIENT_RULES
from layers_kit.contract.operations import IDEMPOTENT_METHODS

log = logging.getLogger("layers.proxy")

MAX_PENDING = 2000
MAX_PENDING_BYTES = 64 * 1024 * 1024
MAX_BATCH = 256  # hand-overs sent to the judge at once


class Judging:
    """The judge itself (in the worker process): the contract and the checks' memory."""

    def __init__(self, target: str, client_rules: bool = False, *,
                 ttl: float = IDEMPOTENCY_TTL, retention: float = RETENTION) -> None:
        self.contract = Contract(target)
        self.operations = self.contract.operations
        self.memory = Memory(track_clients=client_rules, ttl=ttl, retention=retention)
        self.client_rules = client_rules  # --client-rules: judge C1-C6 over time too

    def _view(self, ex: Exchange) -> View:
        route = self.operations.match(ex.method, ex.path)
        return View(ex, self.operations, self.contract, self.memory, route.known_path,
                    route.operation_id, route.params)

    def arrived(self, ex: Exchange) -> None:
        if self.operations.in_contract(ex.path):
            self.memory.started(self._view(ex))

    def lost_keys(self) -> None:
        """An exchange with an Idempotency-Key went unseen: no key is new any more."""
        self.memory.forgot_keys = True

    def judge(self, ex: Exchange) -> Verdict:
        out = Verdict()
        out.count("exchanges")
        if not self.operations.in_contract(ex.path) or _preflight(ex):
            out.count("outsideContract")  # a browser's CORS preflight is not an API call
            return out
        if ex.oversized:
            out.count("oversizedUnchecked")
            return out
        out.count("checked")
        v = self._view(ex)
        valid = bool(v.operation and v.credential and not v.request_errors)
        shown = None
        for c in CHECKS:
            if c.needs_valid_request and not valid:
                continue
            if ex.error and c.name != "server.answers":
                continue
            if c.rule in CLIENT_RULES and not self.client_rules:
                continue
            out.judged(c.name)
            for finding in c.fn(v):
                shown = shown or ex.shown()
                out.record(c.side, c.rule, c.name, c.title, finding, shown)
        self.memory.learn(v)
        return out


def _keyed(ex: Exchange) -> bool:
    """Does the request carry an Idempotency-Key the D6 check would remember?"""
    return ex.method in IDEMPOTENT_METHODS and \
        ex.header("idempotency-key", response=False) is not None


def _preflight(ex: Exchange) -> bool:
    return ex.method == "OPTIONS" and ex.header("access-control-request-method",
                                                response=False) is not None


# ---- the worker process's side --------------------------------------------------------------

_judging: Judging | None = None


def _start(target: str, client_rules: bool = False, ttl: float = IDEMPOTENCY_TTL,
           retention: float = RETENTION) -> None:
    # The proxy stops on SIGINT/SIGTERM sent to its whole process group; the judge must live on
    # until the proxy has asked for the final ledger.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _judging
    _judging = Judging(target, client_rules, ttl=ttl, retention=retention)


def _call_batch(calls: list[tuple[str, Exchange, bool]]) -> list[Verdict | None]:
    """A batch of hand-overs (`arrived` or `judge`, the exchange, whether keys went unseen
    before it), in order: what each returned (None for an arrival, or when a check failed)."""
    out: list[Verdict | None] = []
    for method, ex, lost_keys in calls:
        try:
            if lost_keys:
                _judging.lost_keys()
            out.append(getattr(_judging, method)(ex))
        except Exception:  # a bug in a check must not stop the judge or lose later verdicts
            log.exception("a proxy check failed")
            out.append(None)
    return out


def _ready() -> bool:
    return _judging is not None


# ---- the proxy's side -------------------------------------------------------------------------

class Judge:
    """The forwarding side's handle on the judging process, and the ledger of its verdicts."""

    def __init__(self, target: str, examples_per_check: int = 5, *,
                 max_pending: int | None = None, client_rules: bool = False,
                 ttl: float = IDEMPOTENCY_TTL, retention: float = RETENTION) -> None:
        self.ledger = Ledger(examples_per_check)
        self.max_pending = MAX_PENDING if max_pending is None else max_pending
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start, initargs=(target, client_rules, ttl, retention))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # no batch with the judge, none waiting
        self._waiting: list[tuple[str, Exchange, bool, int]] = []  # (method, ex, lost, size)
        self._sending = False  # a batch is with the judge
        self.batches = 0  # batches sent so far
        self._pending = 0
        self._pending_bytes = 0
        self._peak = 0
        self._lost_keys = False  # an exchange with a key the judge never saw arrive
        self._pool.submit(_ready).result()  # the worker has loaded the contract, or fail now

    def _submit(self, method: str, ex: Exchange, size: int) -> bool:
        """Hand `ex` over unless the judge is too far behind; whether it was handed over."""
        with self._lock:
            if self._pending + 1 > self.max_pending or \
                    self._pending_bytes + size > MAX_PENDING_BYTES:
                if _keyed(ex):
                    self._lost_keys = True
                return False
            self._pending += 1
            self._pending_bytes += size
            self._peak = max(self._peak, self._pending)
            lost, self._lost_keys = self._lost_keys, False
            self._waiting.append((method, ex, lost, size))
            batch = None if self._sending else self._next_batch()
        if batch:
            self._send(batch)
        return True

    def _next_batch(self) -> list[tuple[str, Exchange, bool, int]]:
        """The oldest waiting hand-overs (under the lock); marks a batch as sent when any."""
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        self._sending = bool(batch)
        self.batches += self._sending
        if not batch:
            self._idle.notify_all()
        return batch

    def _send(self, batch: list[tuple[str, Exchange, bool, int]]) -> None:
        try:
            future = self._pool.submit(_call_batch, [(m, ex, lost) for m, ex, lost, _ in batch])
        except RuntimeError:  # the judge's process is gone: these are not judged
            self._done(None, batch)
            return
        future.add_done_callback(lambda f: self._done(f, batch))

    def _done(self, future: Future | None, batch: list[tuple[str, Exchange, bool, int]]) -> None:
        results = None
        if future is not None and not future.cancelled() and future.exception() is None:
            results = future.result()
        if results is None:
            log.error("the judge's process failed: %d hand-overs not judged", len(batch))
        for (method, _, _, _), verdict in zip(batch, results or [None] * len(batch), strict=True):
            if isinstance(verdict, Verdict):
                self.ledger.apply(verdict)
            elif method == "judge":
                self._unjudged()
        with self._lock:
            self._pending -= len(batch)
            self._pending_bytes -= sum(size for *_, size in batch)
            following = self._next_batch()
        if following:
            self._send(following)

    def _unjudged(self) -> None:
        self.ledger.count("exchanges")
        self.ledger.count("unjudged")

    def arrived(self, ex: Exchange) -> None:
        """A request reached the proxy (its headers are known, its body may still stream)."""
        if not self._submit("arrived", dataclasses.replace(ex), 0):
            ex.unjudged = True  # its end is not judged either

    def finished(self, ex: Exchange) -> None:
        size = len(ex.request_body or b"") + len(ex.response_body or b"")
        if ex.unjudged or not self._submit("judge", ex, size):
            self._unjudged()

    def transport(self, ex: Exchange, kind: str, reason: str) -> None:
        """The target gave no (complete) answer: a transport failure, kept apart from the
        server's violations and not judged."""
        self.ledger.count("exchanges")
        self.ledger.transport(kind, reason, ex.shown())

    def refused(self, ex: Exchange) -> None:
        """A request the proxy could not forward (not a URL the target can be asked)."""
        self.ledger.count("exchanges")
        self.ledger.count("refusedByProxy")

    def snapshot(self) -> dict[str, Any]:
        """The ledger now, with how many exchanges still wait for their verdict."""
        with self._lock:
            pending, peak = self._pending, self._peak
        snap = self.ledger.snapshot()
        snap["pending"] = pending
        snap["pendingPeak"] = peak
        snap["maxPending"] = self.max_pending
        return snap

    def close(self) -> dict[str, Any]:
        """Judge what is left, stop the worker, and return the final ledger."""
        with self._idle:
            self._idle.wait_for(lambda: not self._sending)
        self._pool.shutdown(wait=True)
        return self.snapshot()
