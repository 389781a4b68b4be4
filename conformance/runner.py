"""The runner: every check against one target, results streamed to handlers.

CLI, pytest plugin and reports all sit on top of this one stream of outcomes. Order of a run:
preflight (each key authenticates, the project's review policy is readable), then the checks
that work on containers of their own, in a pool, while Schemathesis runs in its own process on
a container of its own; then the checks that change shared state (the review policy) one at a
time; last the judges of what the whole run saw (D5, the spec).
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import itertools
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from layers_kit.conformance.client import Client
from layers_kit.conformance.context import ContainerPool, Ctx
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.failures import (
    Exchange,
    Inconclusive,
    NotRunnable,
    Unreachable,
    Violation,
)
from layers_kit.conformance.observations import Observations, Spend
from layers_kit.conformance.pacing import Pacer
from layers_kit.conformance.probes import (
    Refused,
    answers,
    key_refused,
    restore_shared_state,
    save_shared_state,
    stand_in_probes,
    stand_in_problem,
)
from layers_kit.conformance.registry import NEEDS, Check, all_checks
from layers_kit.conformance.schema_phase import (
    JOB_START_CLASS,
    SchemaResult,
    SchemaUnjudged,
    run_schemathesis,
)
from layers_kit.conformance.target import Target
from layers_kit.conformance.verdicts import (
    ERROR,
    FAIL_ON_NAMES,
    FAILED,
    INCONCLUSIVE,
    NOT_RUN,
    PASSED,
    WAIVED,
    rule_verdict,
)
from layers_kit.conformance.waivers import Waiver, find

__all__ = [
    "ERROR",
    "FAILED",
    "INCONCLUSIVE",
    "NOT_RUN",
    "PASSED",
    "WAIVED",
    "Outcome",
    "RunResult",
    "UsageError",
    "preflight",
    "run",
    "run_check",
    "select",
]


@dataclass
class Outcome:
    rule: str
    name: str
    title: str
    status: str
    message: str = ""
    expected: str | None = None
    received: str | None = None
    option: str | None = None  # not run: the option that would run it
    needed: str | None = None  # inconclusive: what the check needed and did not get
    diff: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)  # failed: the decisive exchange
    traceback: str | None = None  # error: the kit's own failure
    seconds: float = 0.0
    transport: bool = False  # inconclusive because a request got no answer


@dataclass
class RunResult:
    target: Target
    outcomes: list[Outcome]
    seconds: float
    observations: Observations = field(default_factory=Observations)
    schema: SchemaResult | None = None
    expired_waivers: list[Waiver] = field(default_factory=list)
    profile: str = "default"
    fail_on: tuple[str, ...] = ("failed",)  # --fail-on: verdict names (verdicts.FAIL_ON_NAMES)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def with_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def transport_trouble(self) -> list[Outcome]:
        """Checks that could not judge because a request got no answer."""
        return [o for o in self.outcomes if o.transport]

    @property
    def failing_verdicts(self) -> list[Outcome]:
        """Outcomes other than `failed` whose verdict --fail-on names."""
        wanted = {FAIL_ON_NAMES[n] for n in self.fail_on} - {FAILED}
        return [o for o in self.outcomes if o.status in wanted]

    @property
    def exit_code(self) -> int:
        """1: the target broke the contract; 2: the run could not judge (transport trouble,
        or a verdict --fail-on names); 0 otherwise."""
        if self.failed:
            return 1
        return 2 if self.transport_trouble or self.failing_verdicts else 0

    def not_run_options(self) -> dict[str, list[str]]:
        """For each option (or group of options) that would have run checks: those checks."""
        out: dict[str, list[str]] = {}
        for o in self.with_status(NOT_RUN):
            out.setdefault(o.option or o.message, []).append(f"{o.rule} {o.name}")
        return out

    def rules(self) -> dict[str, str]:
        grouped: dict[str, list[str]] = {}
        for o in self.outcomes:
            grouped.setdefault(o.rule, []).append(o.status)
        return {rule: rule_verdict(s) for rule, s in grouped.items()}

    @property
    def spend(self) -> Spend:
        total = Spend()
        total.add(self.observations.spend)
        if self.schema is not None:
            total.add(self.schema.spend)
        return total

    @property
    def created(self) -> dict[str, list[str]]:
        """The ids the run created on the target, by the checks and the Schemathesis phase."""
        out = {kind: list(ids) for kind, ids in self.observations.created.items()}
        if self.schema is not None:
            for kind, ids in self.schema.created.items():
                out.setdefault(kind, []).extend(i for i in ids if i not in out[kind])
        return out

    def coverage(self) -> dict[tuple[str, int], int]:
        seen = dict(self.observations.coverage)
        if self.schema is not None:
            for key, n in self.schema.coverage.items():
                seen[key] = seen.get(key, 0) + n
        return seen


class Handler(Protocol):
    def started(self, target: Target, total: int) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...
    def finished(self, result: RunResult) -> None: ...


class UsageError(Exception):
    pass


RULE_ORDER = ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12", "D5",
              "D6", "D7", "D8", "SCHEMA"]


def select(only: list[str] | None) -> list[Check]:
    checks = sorted(all_checks(), key=lambda c: (c.judge, RULE_ORDER.index(c.rule)
                    if c.rule in RULE_ORDER else len(RULE_ORDER)))
    if not only:
        return checks
    wanted = {o.upper() for o in only}
    picked = [c for c in checks if c.rule.upper() in wanted or c.name in only]
    if not picked and not wanted & {"SCHEMA", "SCHEMATHESIS"}:
        raise UsageError(f"--only {', '.join(only)} matches no rule or check name")
    return picked


@dataclass
class Preflight:
    """What the preflight learned: inputs that cannot serve their checks, and the shared
    state of the target (probes.py: the project's review policy) to restore after
    Schemathesis."""

    problems: dict[str, str] = field(default_factory=dict)  # need -> why it cannot be met
    shared_state: Any = None


_KEYS = (("readonly", "readonly_key", "--readonly-key"),
         ("other_org", "other_org_key", "--other-org-key"),
         ("broke", "broke_key", "--broke-key"))


def preflight(target: Target, contract: Contract) -> Preflight:
    """The target answers HTTP and accepts each key; its shared state is readable."""
    out = Preflight()

    def client(key: str) -> Client:
        return Client(target.base_url, key, contract, [], timeout=10,
                      max_wait=target.max_wait, tls_settings=target.tls)

    probe = client(target.api_key)
    try:
        if key_refused(probe):
            raise UsageError("the target refuses --api-key (401): every check would pass on "
                             "401s")
        for need, attr, option in _KEYS:
            key = getattr(target, attr)
            if not key:
                continue
            other = client(key)
            try:
                if key_refused(other):
                    out.problems[need] = f"the target refuses {option} (401)"
            finally:
                other.close()
        if target.policy_project_id and not target.project_id:
            raise UsageError("--policy-project-id needs --project-id: it holds the checks "
                             "that change a project's review policy apart from the others")
        try:
            saved = save_shared_state(probe, target)
        except Refused as exc:
            raise UsageError(str(exc)) from None
        out.shared_state = saved.state
        out.problems.update(saved.problems)
        extras = target.keys[1:]
        if extras:  # each must answer as --api-key does (its projects and ids checked above)
            probes = stand_in_probes(target)
            expected = answers(probe, probes)
        for i, key in enumerate(extras, 1):
            extra = client(key)
            try:
                if key_refused(extra):  # a check on it would pass on 401s
                    raise UsageError(f"the target refuses --extra-api-key number {i} (401)")
                why = stand_in_problem(probes, expected, extra)
                if why:
                    raise UsageError(f"--extra-api-key number {i} cannot stand in for "
                                     f"--api-key: {why}")
            finally:
                extra.close()
    finally:
        probe.close()
    return out


def run_check(check: Check, target: Target, contract: Contract,
              rotation: itertools.cycle, *, observations: Observations | None = None,
              problems: dict[str, str] | None = None,
              waivers: list[Waiver] = (), today: dt.date | None = None,
              pool: ContainerPool | None = None, pacer: Pacer | None = None,
              key: str | None = None) -> Outcome:
    """One check's outcome; `key` is the one its requests use (default: --api-key). A check
    that changes the review policy works in --policy-project-id when there is one."""
    started = time.monotonic()
    waiver = find(list(waivers), check.rule, check.name, today or dt.date.today())
    if waiver is not None:
        until = f" (until {waiver.expires})" if waiver.expires else ""
        return Outcome(check.rule, check.name, check.title, WAIVED,
                       message=f"waived: {waiver.reason}{until}")
    missing = [n for n in check.needs if not target.has(n)]
    if missing:
        return Outcome(check.rule, check.name, check.title, NOT_RUN,
                       message="needs " + " and ".join(NEEDS[n] for n in missing),
                       option=", ".join(NEEDS[n] for n in missing))
    blocked = [(problems or {})[n] for n in check.needs if n in (problems or {})]
    if blocked:
        return Outcome(check.rule, check.name, check.title, INCONCLUSIVE,
                       message="; ".join(blocked), needed="; ".join(blocked))
    observations = observations if observations is not None else Observations()
    ctx = Ctx(target, contract, rotation, observations=observations, check=check.name,
              pool=pool, pacer=pacer, key=key,
              project=target.policy_project_id if check.exclusive and target.policy_apart
              else None)
    o = Outcome(check.rule, check.name, check.title, PASSED)
    try:
        check.fn(ctx)
    except Violation as v:
        o.status, o.message, o.expected, o.received, o.diff = (
            FAILED, v.message, v.expected, v.received, v.diff)
        decisive = v.exchange or (ctx.exchanges[-1] if ctx.exchanges else None)
        o.exchanges = [decisive] if decisive else []
    except NotRunnable as n:
        o.status, o.message, o.option = NOT_RUN, n.reason, n.option
    except Inconclusive as i:
        o.status, o.message, o.needed = INCONCLUSIVE, i.reason, i.needed
    except Unreachable as u:  # transport trouble: never the target's fault
        o.status, o.message = INCONCLUSIVE, f"a request got no answer: {u}"
        o.needed = "a network path and TLS setup that carry every request to the target"
        o.transport = True
        o.exchanges = ctx.exchanges[-1:]
    except Exception as exc:  # the kit's own failure, or an unreadable answer
        if observations.breached(ctx.exchanges):
            o.status = INCONCLUSIVE
            o.message = (f"a response broke openapi.yaml, so the check could not read it "
                         f"({type(exc).__name__}: {exc}); judged under SCHEMA schema_responses")
            o.needed = "responses that match the contract"
        else:
            o.status, o.message = ERROR, f"the kit failed: {type(exc).__name__}: {exc}"
            o.traceback = "".join(traceback.format_exception(exc))
    finally:
        ctx.close()
    o.seconds = round(time.monotonic() - started, 2)
    return o


JOBS_PER_KEY = 4  # checks at once per key of the checks, when --jobs does not say


def phase_apart(target: Target, schema: bool, waived: bool = False) -> bool:
    """Whether the Schemathesis phase gets keys of its own (Target.key_shares): when it runs
    (`schema`: selected and enabled; not `waived`) alongside the checks, which needs a
    container of its own, so --project-id; after them it may as well share them all."""
    return schema and not waived and bool(target.project_id)


def run(target: Target, *, handlers: list[Handler] = (), only: list[str] | None = None,
        profile: str = "default", schemathesis: bool = True,
        schemathesis_examples: int | None = None, seed: int | None = None,
        jobs: int | None = None, waivers: list[Waiver] = (),
        exclude_checks: list[str] = (), report_dir: Path | None = None,
        today: dt.date | None = None, fail_on: tuple[str, ...] = ("failed",)) -> RunResult:
    """Run the checks; with a --project-id each check has its own containers, so `jobs`
    of them run at once (default: JOBS_PER_KEY per key of the checks); with shared
    --container-id ones they run one by one."""
    today = today or dt.date.today()
    unknown = [v for v in fail_on if v not in FAIL_ON_NAMES]
    if unknown:
        raise UsageError(f"--fail-on {', '.join(unknown)}: the verdicts are "
                         f"{', '.join(FAIL_ON_NAMES)}")
    contract = Contract(target.base_url)
    checks = select(only)
    with_schema = not only or bool({o.upper() for o in only} & {"SCHEMA", "SCHEMATHESIS"})
    pre = preflight(target, contract)
    observations = Observations()
    total = len(checks) + (1 if with_schema else 0)
    for h in handlers:
        h.started(target, total)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    rotation = itertools.cycle(target.container_ids) if target.container_ids else iter(())
    containers = ContainerPool() if target.project_id else None
    # The checks' rate-limit lines tell the Schemathesis phase (its own process, same key) to
    # hold back while checks wait on a class (pacing.py).
    signals = Path(tempfile.mkdtemp(prefix="layers-conformance-pace-"))
    pacer = Pacer(signals)
    lock = threading.Lock()
    # With --extra-api-key the Schemathesis phase has keys of its own (Target.key_shares),
    # and each check, as it starts, takes the checks' key that the fewest running checks use,
    # of those the one that sent the fewest job starts: a check sends all its requests with
    # one key (an Idempotency-Key is the key's own), and its needs are not known beforehand.
    check_keys, phase_keys = target.key_shares(phase=phase_apart(
        target, with_schema and schemathesis,
        waived=find(list(waivers), "SCHEMA", "schemathesis", today) is not None))
    running: Counter[str] = Counter()

    def emit(o: Outcome) -> None:
        with lock:
            outcomes.append(o)
            for h in handlers:
                h.outcome(o)

    def one(c: Check) -> Outcome:
        with lock:
            key = min(check_keys, key=lambda k: (running[k], pacer.sent(k, JOB_START_CLASS)))
            running[key] += 1
        try:
            return run_check(c, target, contract, rotation, observations=observations,
                             problems=pre.problems, waivers=waivers, today=today,
                             pool=containers, pacer=pacer, key=key)
        finally:
            with lock:
                running[key] -= 1

    schema_box: dict[str, Any] = {}

    def schema_part() -> None:
        o, res = _schema_outcome(target, contract, schemathesis, profile,
                                 schemathesis_examples, seed, waivers, today, exclude_checks,
                                 report_dir, observations, containers, pacer, phase_keys,
                                 shared_keys=phase_keys == check_keys)
        schema_box["result"] = res
        if pre.shared_state is not None and res is not None:
            _restore(target, contract, pre.shared_state, observations)
        emit(o)

    # --jobs, else JOBS_PER_KEY for each key of the checks: each key's load stays the same
    workers = (jobs or JOBS_PER_KEY * len(check_keys)) if target.project_id else 1
    # Checks whose requests must reach the target at once go first, before the run has
    # drained the target's rate-limit buckets (registry.Check.burst).
    shared = sorted((c for c in checks if not c.exclusive and not c.judge),
                    key=lambda c: not c.burst)
    # Schemathesis has containers of its own only with --project-id: then it runs alongside.
    alongside = with_schema and bool(target.project_id)
    schema_thread = threading.Thread(target=schema_part, daemon=True) if alongside else None
    if schema_thread is not None:
        schema_thread.start()
    # The checks that change the review policy run one after another: alone at the end, or,
    # in a project of their own (--policy-project-id), alongside the others from the start
    # (unless --jobs 1 asks for one check at a time).
    policy_checks = [c for c in checks if c.exclusive]
    side = cf.ThreadPoolExecutor(1) if target.policy_apart and workers > 1 and policy_checks \
        else None
    policy_run = side.submit(lambda: [emit(one(c)) for c in policy_checks]) if side else None
    try:
        with cf.ThreadPoolExecutor(workers) as pool:
            for o in pool.map(one, shared):
                emit(o)
        if schema_thread is not None:
            schema_thread.join()
        elif with_schema:
            schema_part()
        if policy_run is not None:
            policy_run.result()  # what failed there fails the run, as it would at the end
        else:
            for c in policy_checks:
                emit(one(c))
    finally:
        if side is not None:
            side.shutdown(wait=True)
    for c in checks:
        if c.judge:
            emit(one(c))
    order = {c.name: i for i, c in enumerate(checks)}
    outcomes.sort(key=lambda o: (RULE_ORDER.index(o.rule) if o.rule in RULE_ORDER
                                 else len(RULE_ORDER), order.get(o.name, len(order))))
    result = RunResult(target, outcomes, round(time.monotonic() - started, 2), observations,
                       schema_box.get("result"),
                       [w for w in waivers if not w.active(today)], profile, tuple(fail_on))
    shutil.rmtree(signals, ignore_errors=True)
    for h in handlers:
        h.finished(result)
    return result


def _restore(target: Target, contract: Contract, state: Any,
             observations: Observations) -> None:
    """Schemathesis may change the target's shared state: put back what the team had."""
    c = Client(target.base_url, target.api_key, contract, [], observations=observations,
               check="schemathesis", max_wait=target.max_wait, tls_settings=target.tls)
    try:
        restore_shared_state(c, target, state)
    finally:
        c.close()


SCHEMA_TITLE = "Schemathesis: its phases and every check, against openapi.yaml"


def _schema_outcome(target: Target, contract: Contract, enabled: bool, profile: str,
                    examples: int | None, seed: int | None, waivers: list[Waiver],
                    today: dt.date, exclude_checks: list[str], report_dir: Path | None,
                    observations: Observations, pool: ContainerPool | None,
                    pacer: Pacer, keys: tuple[str, ...],
                    shared_keys: bool = True) -> tuple[Outcome, SchemaResult | None]:
    """The SCHEMA outcome: Schemathesis on its own container (from the run's `pool`) with
    `keys` (job starts spread over them), holding back while the checks wait their turn on a
    rate-limit class (`pacer`'s signals) when it shares a key with them (`shared_keys`)."""
    waiver = find(list(waivers), "SCHEMA", "schemathesis", today)
    if waiver is not None:
        return Outcome("SCHEMA", "schemathesis", SCHEMA_TITLE, WAIVED,
                       message=f"waived: {waiver.reason}"), None
    if not enabled:
        return Outcome("SCHEMA", "schemathesis", SCHEMA_TITLE, NOT_RUN,
                       message="skipped by --no-schemathesis",
                       option="drop --no-schemathesis"), None
    started = time.monotonic()
    container = None
    try:
        container = _schema_container(target, contract, observations, pool, pacer, keys[0])
    except (Violation, Inconclusive) as exc:
        container = None
        note = str(exc)
    else:
        note = ""
    try:
        res = run_schemathesis(target.base_url, keys[0], extra_keys=keys[1:], profile=profile,
                               max_examples=examples, seed=seed, report_dir=report_dir,
                               project_id=target.project_id, container_id=container,
                               exclude_checks=list(exclude_checks), contract=contract,
                               tls_settings=target.tls,
                               yield_dir=pacer.signal_dir if shared_keys else None)
    except SchemaUnjudged as exc:  # inconclusive (no answer, nothing accepted) or error
        res = exc.result
        message = res.message + (f"\n(no container of its own: {note})" if note else "")
        return Outcome("SCHEMA", "schemathesis", SCHEMA_TITLE, res.verdict, message=message,
                       needed="; ".join(res.reasons) or None,
                       transport=any("stopped answering" in r for r in res.reasons),
                       seconds=round(time.monotonic() - started, 2)), res
    except Exception as exc:  # the kit's own failure
        return Outcome("SCHEMA", "schemathesis", SCHEMA_TITLE, ERROR,
                       message=f"the kit failed to run Schemathesis: {exc}",
                       traceback="".join(traceback.format_exception(exc)),
                       seconds=round(time.monotonic() - started, 2)), None
    message = res.message if res.ok else f"{len(res.failures)} failure(s)\n" + "\n\n".join(
        res.failures[:10]) + "\n" + res.message
    if note:
        message = (message + "\n" if message else "") + f"(no container of its own: {note})"
    return Outcome("SCHEMA", "schemathesis", SCHEMA_TITLE, PASSED if res.ok else FAILED,
                   message=message, received=None if res.ok else res.summary,
                   seconds=round(time.monotonic() - started, 2)), res


def _schema_container(target: Target, contract: Contract, observations: Observations,
                      pool: ContainerPool | None, pacer: Pacer, key: str) -> str | None:
    """A container Schemathesis may regenerate, so that it goes beyond 404s: one of its own
    from the run's pool with --project-id (the run makes a pool whenever there is one), else
    the first --container-id (then it runs after the checks)."""
    if not target.project_id:
        return target.container_ids[0] if target.container_ids else None
    ctx = Ctx(target, contract, iter(()), observations=observations, check="schemathesis",
              pool=pool, pacer=pacer, key=key)
    try:
        return ctx.container()
    finally:
        ctx.close()
