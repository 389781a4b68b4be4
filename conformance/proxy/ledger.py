"""What the proxy found, kept in bounded memory over a run of any length.

Each check keeps a count and its first few examples; the exchanges themselves are not kept.
Verdicts come back from the judging process on a thread of the pool; the web endpoint and the
reports read a snapshot under one lock.

Transport failures (the target gave no complete answer: TLS, connection refused or reset, a
timeout, no free connection) are kept apart, in `transport`: a count per kind and the first
few examples. They are never server violations: they prevented judging.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SERVER = "server"
CLIENT = "client"


@dataclass
class Finding:
    """A check's verdict on one exchange: which rule broke and how."""

    check: str
    message: str
    expected: str | None = None
    received: str | None = None


@dataclass
class Tally:
    side: str
    rule: str
    check: str
    title: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


class Verdict:
    """What judging one exchange found, recorded where it is judged and applied to the ledger
    where it is kept (the judge is another process; this travels between them)."""

    def __init__(self) -> None:
        self.counts: list[str] = []
        self.judged_by: list[str] = []
        self.findings: list[tuple[str, str, str, str, Finding, dict[str, Any]]] = []

    def count(self, what: str) -> None:
        self.counts.append(what)

    def judged(self, check: str) -> None:
        self.judged_by.append(check)

    def record(self, side: str, rule: str, check: str, title: str, finding: Finding,
               exchange: dict[str, Any]) -> None:
        self.findings.append((side, rule, check, title, finding, exchange))


class Ledger:
    def __init__(self, examples_per_check: int = 5) -> None:
        self.examples_per_check = examples_per_check
        self.started = time.time()
        self.counts: Counter[str] = Counter()  # exchanges, checked, oversized, ...
        self.checks_run: Counter[str] = Counter()  # check name -> exchanges it judged
        self._tallies: dict[str, Tally] = {}
        self.transport_kinds: Counter[str] = Counter()  # tls, connect, reset, cut, timeout, pool
        self._transport_examples: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def judged(self, check: str) -> None:
        with self._lock:
            self.checks_run[check] += 1

    def record(self, side: str, rule: str, check: str, title: str, finding: Finding,
               exchange: dict[str, Any]) -> None:
        with self._lock:
            tally = self._tallies.get(check)
            if tally is None:
                tally = self._tallies[check] = Tally(side, rule, check, title)
            tally.count += 1
            if len(tally.examples) < self.examples_per_check:
                tally.examples.append({
                    "message": finding.message, "expected": finding.expected,
                    "received": finding.received, "exchange": exchange,
                })

    def transport(self, kind: str, reason: str, exchange: dict[str, Any]) -> None:
        """The target gave no (complete) answer to this exchange."""
        with self._lock:
            self.counts["transport"] += 1
            self.transport_kinds[kind] += 1
            if len(self._transport_examples) < self.examples_per_check:
                self._transport_examples.append({"kind": kind, "message": reason,
                                                 "exchange": exchange})

    def apply(self, verdict: Verdict) -> None:
        for what in verdict.counts:
            self.count(what)
        for check in verdict.judged_by:
            self.judged(check)
        for args in verdict.findings:
            self.record(*args)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: counts, and violations by side, most frequent first."""
        with self._lock:
            tallies = sorted(self._tallies.values(), key=lambda t: (-t.count, t.check))
            out: dict[str, Any] = {
                "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                "seconds": round(time.time() - self.started, 1),
                "counts": dict(self.counts),
                "checksRun": dict(self.checks_run),
                SERVER: [], CLIENT: [],
                "transport": {"count": sum(self.transport_kinds.values()),
                              "kinds": dict(self.transport_kinds),
                              "examples": list(self._transport_examples)},
            }
            for t in tallies:
                out[t.side].append({"rule": t.rule, "check": t.check, "title": t.title,
                                    "count": t.count, "examples": list(t.examples)})
            return out

    def violations(self, side: str) -> int:
        with self._lock:
            return sum(t.count for t in self._tallies.values() if t.side == side)
