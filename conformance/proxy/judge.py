"""Judges each exchange with every check, in a process of its own, in the order the proxy saw
them.

openapi-core costs a few milliseconds of CPU per exchange; on the forwarding side's thread (or
another thread of its process, under the GIL) that time would be added to the answers. So the
forwarding side only hands over the request's arrival and then the finished exchange; one
worker process judges them in order (it keeps the checks' memory) and sends back a `Verdict`,
which the proxy adds to its ledger, so `/__proxy/violations` answers at once (with how many
exchanges are still `pending`). When the judge falls behind by more than `MAX_PENDING`
exchanges or `MAX_PENDING_BYTES` of bodies, further exchanges are forwarded but not judged
(counted as `unjudged`), so memory stays bounded under any load.
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
from layers_kit.conformance.proxy.memory import Memory

log = logging.getLogger("layers.proxy")

MAX_PENDING = 2000
MAX_PENDING_BYTES = 64 * 1024 * 1024


class Judging:
    """The judge itself (in the worker process): the contract and the checks' memory."""

    def __init__(self, target: str) -> None:
        self.contract = Contract(target)
        self.operations = self.contract.operations
        self.memory = Memory()

    def _view(self, ex: Exchange) -> View:
        route = self.operations.match(ex.method, ex.path)
        return View(ex, self.operations, self.contract, self.memory, route.known_path,
                    route.operation_id)

    def arrived(self, ex: Exchange) -> None:
        if self.operations.in_contract(ex.path):
            self.memory.started(self._view(ex))

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
            out.judged(c.name)
            for finding in c.fn(v):
                shown = shown or ex.shown()
                out.record(c.side, c.rule, c.name, c.title, finding, shown)
        self.memory.learn(v)
        return out


def _preflight(ex: Exchange) -> bool:
    return ex.method == "OPTIONS" and ex.header("access-control-request-method",
                                                response=False) is not None


# ---- the worker process's side --------------------------------------------------------------

_judging: Judging | None = None


def _start(target: str) -> None:
    # The proxy stops on SIGINT/SIGTERM sent to its whole process group; the judge must live on
    # until the proxy has asked for the final ledger.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _judging
    _judging = Judging(target)


def _call(method: str, *args: Any) -> Any:
    try:
        return getattr(_judging, method)(*args)
    except Exception:  # a bug in a check must not stop the judge or lose later verdicts
        log.exception("a proxy check failed")
        return None


def _ready() -> bool:
    return _judging is not None


# ---- the proxy's side -------------------------------------------------------------------------

class Judge:
    """The forwarding side's handle on the judging process, and the ledger of its verdicts."""

    def __init__(self, target: str, examples_per_check: int = 5) -> None:
        self.ledger = Ledger(examples_per_check)
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start, initargs=(target,))
        self._lock = threading.Lock()
        self._pending = 0
        self._pending_bytes = 0
        self._pool.submit(_ready).result()  # the worker has loaded the contract, or fail now

    def _submit(self, method: str, ex: Exchange, size: int) -> None:
        with self._lock:
            if method == "judge" and (self._pending >= MAX_PENDING or
                                      self._pending_bytes + size > MAX_PENDING_BYTES):
                self.ledger.count("exchanges")
                self.ledger.count("unjudged")
                return
            self._pending += 1
            self._pending_bytes += size
        future = self._pool.submit(_call, method, ex)
        future.add_done_callback(lambda f: self._done(f, size))

    def _done(self, future: Future, size: int) -> None:
        verdict = None if future.cancelled() or future.exception() else future.result()
        if isinstance(verdict, Verdict):
            self.ledger.apply(verdict)
        with self._lock:
            self._pending -= 1
            self._pending_bytes -= size

    def arrived(self, ex: Exchange) -> None:
        """A request reached the proxy (its headers are known, its body may still stream)."""
        self._submit("arrived", dataclasses.replace(ex), 0)

    def finished(self, ex: Exchange) -> None:
        size = len(ex.request_body or b"") + len(ex.response_body or b"")
        self._submit("judge", ex, size)

    def snapshot(self) -> dict[str, Any]:
        """The ledger now, with how many exchanges still wait for their verdict."""
        with self._lock:
            pending = self._pending
        snap = self.ledger.snapshot()
        snap["pending"] = pending
        return snap

    def close(self) -> dict[str, Any]:
        """Judge what is left, stop the worker, and return the final ledger."""
        self._pool.shutdown(wait=True)
        return self.snapshot()
