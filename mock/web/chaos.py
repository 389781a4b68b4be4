"""Chaos on request: a seeded share of the API's requests answered with 429, 503, added latency or
a dropped connection, so that a partner's test proves its client survives them (and the client
report, client_report.py, shows how it coped).

From start (`--chaos RATE --chaos-seed N --chaos-kinds ... --chaos-operations ...`) or per test
(`POST /__mock/chaos`, `DELETE /__mock/chaos`, the `layers_mock.chaos(...)` fixture method).
Which request gets what is a pure function of the seed and the request's rank among the
requests chaos applies to, counted by this process since chaos was (re)armed: the same seed and
the same sequence of requests give the same faults (per worker process with `--workers`).

Idempotency stays honest: a 429 or a 503 is answered before the operation runs (so nothing is
stored under the request's key, as D6 says of both), and a drop happens after the operation
ran and its outcome was stored, then the connection is cut without an answer, so a retry with
the same `Idempotency-Key` gets the first outcome replayed, and one without a key may start a
second job, which is exactly what the client rule C1 is about.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.web import state
from layers_kit.mock.web.outer import drop_connection

KINDS = ("429", "503", "latency", "drop")


@dataclass(frozen=True)
class Chaos:
    rate: float = 0.0  # share of the requests chaos applies to, 0..1
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    operations: tuple[str, ...] = ()  # operationIds; empty: every operation
    latency_ms: int = 500

    def applies(self, operation_id: str | None) -> bool:
        return self.rate > 0 and operation_id is not None and (
            not self.operations or operation_id in self.operations)

    def decide(self, rank: int) -> str | None:
        """What the `rank`-th request chaos applies to gets (None: nothing)."""
        rng = random.Random(f"{self.seed}:{rank}")  # str seeds hash the same in every run
        if rng.random() >= self.rate:
            return None
        return self.kinds[rng.randrange(len(self.kinds))]

    def as_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed, "kinds": list(self.kinds),
                "operations": list(self.operations), "latencyMs": self.latency_ms}


def parse(body: dict[str, Any]) -> Chaos:
    """A Chaos from the control API's body (its schema checked it); ValueError otherwise."""
    kinds = tuple(body.get("kinds") or KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"chaos kinds are {', '.join(KINDS)}, not {', '.join(unknown)}")
    rate = float(body.get("rate", 0.0))
    if not 0 <= rate <= 1:
        raise ValueError("chaos rate is a share from 0 to 1")
    return Chaos(rate, int(body.get("seed", 0)), kinds, tuple(body.get("operations") or ()),
                 int(body.get("latencyMs", 500)))


def from_config(config: Any) -> Chaos:
    """The chaos a mock starts with (`--chaos`, `--chaos-seed`, ...)."""
    return Chaos(float(config.chaos), int(config.chaos_seed),
                 tuple(k.strip() for k in config.chaos_kinds.split(",") if k.strip()),
                 tuple(o.strip() for o in config.chaos_operations.split(",") if o.strip()))


@dataclass
class ChaosState:
    """The chaos in force in this process and the rank of the next request it applies to."""

    chaos: Chaos = field(default_factory=Chaos)
    rank: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, chaos: Chaos) -> None:
        with self.lock:
            self.chaos, self.rank = chaos, 0

    def next(self, operation_id: str | None) -> str | None:
        # Without chaos (the usual case) no lock is taken: a request's hot path pays one
        # attribute read. `chaos` is replaced whole by arm(), never changed in place.
        if not self.chaos.applies(operation_id):
            return None
        with self.lock:
            if not self.chaos.applies(operation_id):  # disarmed meanwhile
                return None
            rank, self.rank = self.rank, self.rank + 1
            return self.chaos.decide(rank)


def _error(kind: str) -> ApiError:
    if kind == "429":
        return ApiError("Too many requests (chaos); retry after the given seconds.",
                        code="RATE_LIMITED", status=429, headers={"Retry-After": "1"})
    return ApiError("The service is unavailable right now (chaos); retry after the given "
                    "seconds.", code="INTERNAL", status=503, headers={"Retry-After": "1"})


class ChaosMiddleware:
    def __init__(self, app: ASGIApp, chaos: ChaosState) -> None:
        self.app = app
        self.chaos = chaos

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.chaos.next(state.current().operation_id) if scope["type"] == "http" \
            else None
        if kind is None:
            await self.app(scope, receive, send)
        elif kind in ("429", "503"):
            raise _error(kind)
        elif kind == "latency":
            await asyncio.sleep(self.chaos.chaos.latency_ms / 1000)
            await self.app(scope, receive, send)
        else:
            await self._drop(scope, receive, send)

    async def _drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the operation, keep its outcome, and cut the connection without an answer."""
        async def swallow(message: Message) -> None:
            pass

        await self.app(scope, receive, swallow)
        await drop_connection(scope, send)
