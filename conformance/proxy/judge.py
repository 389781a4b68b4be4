"""Judges each exchange with every check, on one thread, in the order the proxy saw them.

The forwarding side never waits for a verdict: it hands the request's arrival and then the
finished exchange to `Judge.submit`, and one worker thread runs openapi-core and the checks, so
verdicts need no locks and see the traffic in order.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from conformance.contract import Contract
from conformance.proxy.checks import CHECKS, Memory, View
from conformance.proxy.exchange import Exchange
from conformance.proxy.ledger import Ledger
from conformance.proxy.routes import Routes

log = logging.getLogger("layers.proxy")


class Judge:
    def __init__(self, target: str, ledger: Ledger) -> None:
        self.contract = Contract(target)
        self.routes = Routes(self.contract.doc)
        self.ledger = ledger
        self.memory = Memory()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proxy-judge")

    def _view(self, ex: Exchange) -> View:
        known, op = self.routes.match(ex.method, ex.path)
        return View(ex, self.routes, self.contract, self.memory, known, op)

    def arrived(self, ex: Exchange) -> None:
        """A request reached the proxy (its headers are known, its body may still stream)."""
        if self.routes.in_contract(ex.path):
            self._pool.submit(self._guard, self.memory.started, self._view(ex))

    def finished(self, ex: Exchange) -> None:
        self._pool.submit(self._guard, self.judge, ex)

    async def caught_up(self) -> None:
        """Wait until everything submitted so far has been judged (the pool runs in order)."""
        await asyncio.wrap_future(self._pool.submit(lambda: None))

    def drain(self) -> None:
        """Wait until every submitted exchange has been judged (before writing reports)."""
        self._pool.shutdown(wait=True)

    @staticmethod
    def _guard(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # a bug in a check must not stop the proxy or lose later verdicts
            log.exception("a proxy check failed")

    def judge(self, ex: Exchange) -> None:
        self.ledger.count("exchanges")
        if not self.routes.in_contract(ex.path) or _preflight(ex):
            self.ledger.count("outsideContract")  # a browser's CORS preflight is not an API call
            return
        if ex.oversized:
            self.ledger.count("oversizedUnchecked")
            return
        self.ledger.count("checked")
        v = self._view(ex)
        valid = bool(v.operation and v.credential and not v.request_errors)
        shown = None
        for c in CHECKS:
            if c.needs_valid_request and not valid:
                continue
            if ex.error and c.name != "server.answers":
                continue
            self.ledger.judged(c.name)
            for finding in c.fn(v):
                shown = shown or ex.shown()
                self.ledger.record(c.side, c.rule, c.name, c.title, finding, shown)
        self.memory.learn(v)


def _preflight(ex: Exchange) -> bool:
    return ex.method == "OPTIONS" and ex.header("access-control-request-method",
                                                response=False) is not None
