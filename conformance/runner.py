"""The runner: every check against one target, results streamed to handlers.

CLI, pytest plugin and reports all sit on top of this one stream of outcomes.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from conformance.client import Client
from conformance.context import Ctx
from conformance.contract import Contract
from conformance.failures import Exchange, NotRunnable, Unreachable, Violation
from conformance.registry import NEEDS, Check, all_checks
from conformance.schema_phase import run_schemathesis
from conformance.target import Target

PASSED, FAILED, NOT_RUN = "passed", "failed", "not run"


@dataclass
class Outcome:
    rule: str
    name: str
    title: str
    status: str
    message: str = ""
    expected: str | None = None
    received: str | None = None
    option: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunResult:
    target: Target
    outcomes: list[Outcome]
    seconds: float

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


class Handler(Protocol):
    def started(self, target: Target, total: int) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...
    def finished(self, result: RunResult) -> None: ...


class UsageError(Exception):
    pass


RULE_ORDER = ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12", "D6",
              "D7", "D8"]


def select(only: list[str] | None) -> list[Check]:
    checks = sorted(all_checks(), key=lambda c: RULE_ORDER.index(c.rule)
                    if c.rule in RULE_ORDER else len(RULE_ORDER))
    if not only:
        return checks
    wanted = {o.upper() for o in only}
    picked = [c for c in checks if c.rule.upper() in wanted or c.name in only]
    if not picked:
        raise UsageError(f"--only {', '.join(only)} matches no rule or check name")
    return picked


def preflight(target: Target, contract: Contract) -> None:
    """The target answers HTTP and accepts the key; otherwise there is nothing to test."""
    probe = Client(target.base_url, target.api_key, contract, [], timeout=10)
    try:
        r = probe.request("GET", f"/v1/content/cnt_{uuid.uuid4()}", validate=False)
    finally:
        probe.close()
    if r.status_code == 401:
        raise UsageError("the target refuses --api-key (401): every check would pass on 401s")


def run_check(check: Check, target: Target, contract: Contract,
              rotation: itertools.cycle) -> Outcome:
    started = time.monotonic()
    missing = [n for n in check.needs if not target.has(n)]
    if missing:
        return Outcome(check.rule, check.name, check.title, NOT_RUN,
                       message="needs " + " and ".join(NEEDS[n] for n in missing),
                       option=", ".join(NEEDS[n] for n in missing))
    ctx = Ctx(target, contract, rotation)
    try:
        check.fn(ctx)
        status, message, expected, received, option = PASSED, "", None, None, None
    except Violation as v:
        status, message, expected, received, option = FAILED, v.message, v.expected, \
            v.received, None
    except NotRunnable as n:
        status, message, expected, received, option = NOT_RUN, n.reason, None, None, n.option
    except Unreachable as u:
        status, message, expected, received, option = FAILED, f"the target stopped answering: "\
            f"{u}", None, None, None
    except Exception as exc:  # a malformed answer the check could not read is a failure too
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        status, message, expected, received, option = (
            FAILED, f"the response could not be read as the contract says "
                    f"({type(exc).__name__}: {exc} at {tb.name})", None, None, None)
    finally:
        ctx.close()
    return Outcome(check.rule, check.name, check.title, status, message, expected, received,
                   option, ctx.exchanges[-6:] if status == FAILED else [],
                   round(time.monotonic() - started, 2))


def run(target: Target, *, handlers: list[Handler] = (), only: list[str] | None = None,
        profile: str = "default", schemathesis: bool = True,
        schemathesis_examples: int | None = None, seed: int | None = None,
        jobs: int | None = None) -> RunResult:
    """Run the checks; with a --project-id each check has its own containers, so `jobs`
    of them run at once (default 4); with shared --container-id ones they run one by one."""
    contract = Contract(target.base_url)
    checks = select(only)
    preflight(target, contract)
    total = len(checks) + (0 if only else 1)
    for h in handlers:
        h.started(target, total)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    rotation = itertools.cycle(target.container_ids) if target.container_ids else iter(())

    lock = threading.Lock()

    def emit(o: Outcome) -> None:
        with lock:
            outcomes.append(o)
            for h in handlers:
                h.outcome(o)

    workers = (jobs or 4) if target.project_id else 1
    shared = [c for c in checks if not c.exclusive]
    with cf.ThreadPoolExecutor(workers) as pool:
        for o in pool.map(lambda c: run_check(c, target, contract, rotation), shared):
            emit(o)
    for c in checks:
        if c.exclusive:
            emit(run_check(c, target, contract, rotation))
    order = {c.name: i for i, c in enumerate(checks)}
    outcomes.sort(key=lambda o: order.get(o.name, len(order)))
    if not only:
        emit(_schema_outcome(target, schemathesis, profile, schemathesis_examples, seed))
    result = RunResult(target, outcomes, round(time.monotonic() - started, 2))
    for h in handlers:
        h.finished(result)
    return result


def _schema_outcome(target: Target, enabled: bool, profile: str, examples: int | None,
                    seed: int | None) -> Outcome:
    title = "Schemathesis: every phase, every check, against openapi.yaml"
    if not enabled:
        return Outcome("SCHEMA", "schemathesis", title, NOT_RUN,
                       message="skipped by --no-schemathesis", option="drop --no-schemathesis")
    started = time.monotonic()
    res = run_schemathesis(target.base_url, target.api_key, profile=profile,
                           max_examples=examples, seed=seed)
    return Outcome("SCHEMA", "schemathesis", title, PASSED if res.ok else FAILED,
                   message="" if res.ok else f"{len(res.failures)} failure(s)\n" +
                   "\n\n".join(res.failures[:10]),
                   received=None if res.ok else res.summary,
                   seconds=round(time.monotonic() - started, 2))
