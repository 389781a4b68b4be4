"""How a well-behaved client of this API acts over time: the client rules C1-C6 and their judges.

The contract's description states them ("A well-behaved client"); the thresholds are here, once,
and the prose quotes them (tests/test_client_rules.py holds the two together). They are judged
from a sequence of calls of one client, as the mock's journal or the validating proxy saw
them, so the mock grades a partner's client without a proxy, and the proxy grades real traffic
with the same judges:

- C1 a job start retried after a 5xx, a timeout or a dropped connection reuses its
  `Idempotency-Key` (a new key may start, and charge, a second job);
- C2 an `Idempotency-Key` is never reused with another request;
- C3 after a 429, or a 503 with `Retry-After`, nothing of that endpoint class is sent before
  `Retry-After` has passed;
- C4 a job is polled at most once per `MIN_POLL_INTERVAL`, sending `If-None-Match` with the
  last `ETag`;
- C5 a job is not polled again once it was seen `completed`, `failed` or `canceled`;
- C6 a `409 CONFLICT` on regenerate is followed by waiting on the running job (its
  `details.jobId`), not by a tight retry loop.

Pure functions of plain records: this module is part of the contract package (the lowest
layer) and knows no HTTP library, mock or kit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MIN_POLL_INTERVAL = 1.0  # seconds between two polls of one job by one client
TOLERANCE = 0.1  # seconds of slack for clocks and scheduling, on every threshold
CONFLICT_WAIT = 1.0  # seconds before another regenerate of a busy container, unless the
# running job was read meanwhile
RETRY_WINDOW = 600.0  # seconds within which a job start to the same path and body is a retry
JOB_STARTS = frozenset({"regenerateContent", "generateContent"})
TERMINAL = frozenset({"completed", "failed", "canceled"})


@dataclass(frozen=True)
class Call:
    """One call of a client, as far as the client rules look at it."""

    at: float  # seconds (any origin, one clock for the whole sequence)
    client: str  # who: an API key's masked form, or an X-Client-Id
    method: str
    path: str
    operation: str | None = None
    status: int = 0  # 0: no answer (dropped, timed out)
    idempotency_key: str | None = None
    fingerprint: str | None = None  # method, path and canonical body, digested (D6)
    if_none_match: bool = False
    etag: str | None = None  # the answer's ETag
    retry_after: float | None = None  # the answer's Retry-After, in seconds
    rate_class: str | None = None  # the operation's endpoint class
    error_code: str | None = None
    job_id: str | None = None  # getJob's job; a job start's new job; a CONFLICT's running job
    job_status: str | None = None  # the job's status in getJob's answer
    container_id: str | None = None  # regenerate's container
    request_id: str | None = None


@dataclass(frozen=True)
class Breach:
    rule: str
    message: str
    calls: tuple[Call, ...]  # the exchanges that show it, in order


@dataclass
class RuleResult:
    rule: str
    title: str
    verdict: str  # passed | failed | not observed (nothing in the calls gave it occasion)
    occasions: int = 0
    breaches: list[Breach] = field(default_factory=list)


RULES = {
    "C1": "A retried job start reuses its Idempotency-Key",
    "C2": "An Idempotency-Key is never reused with another request",
    "C3": "Nothing of an endpoint class before Retry-After has passed",
    "C4": f"Jobs are polled at most once per {MIN_POLL_INTERVAL:g} s, with If-None-Match",
    "C5": "No poll after a job ended",
    "C6": "A 409 CONFLICT on regenerate is followed by waiting on the running job",
}


def _no_answer_or_5xx(c: Call) -> bool:
    return c.status == 0 or c.status >= 500


def c1_retries_reuse_the_key(calls: list[Call]) -> tuple[int, list[Breach]]:
    occasions, out = 0, []
    for i, first in enumerate(calls):
        if first.operation not in JOB_STARTS or not _no_answer_or_5xx(first):
            continue
        # the same request again (an answer given before the body was read has no
        # fingerprint: then the same method and path make the retry)
        retry = next((c for c in calls[i + 1:] if c.operation == first.operation
                      and c.path == first.path and c.method == first.method
                      and (None in (c.fingerprint, first.fingerprint)
                           or c.fingerprint == first.fingerprint)
                      and c.at - first.at <= RETRY_WINDOW), None)
        if retry is None:
            continue
        occasions += 1
        if first.idempotency_key is None:
            out.append(Breach("C1", f"{first.operation} got "
                              f"{first.status or 'no answer'} and was sent again, but neither "
                              "carried an Idempotency-Key: the first may have started a job",
                              (first, retry)))
        elif retry.idempotency_key != first.idempotency_key:
            out.append(Breach("C1", f"{first.operation} got {first.status or 'no answer'} and "
                              "was retried with another Idempotency-Key: a second job (and "
                              "charge) if the first reached the server", (first, retry)))
    return occasions, out


def c2_key_never_reused(calls: list[Call]) -> tuple[int, list[Breach]]:
    first_of: dict[str, Call] = {}
    occasions, out = 0, []
    for c in calls:
        if not c.idempotency_key or c.fingerprint is None:
            continue
        first = first_of.setdefault(c.idempotency_key, c)
        if first is c:
            continue
        occasions += 1
        if c.fingerprint != first.fingerprint:
            out.append(Breach("C2", f"the Idempotency-Key {c.idempotency_key!r} was reused "
                              f"for another request ({c.method} {c.path})", (first, c)))
    return occasions, out


def c3_retry_after_respected(calls: list[Call]) -> tuple[int, list[Breach]]:
    occasions, out = 0, []
    for i, told in enumerate(calls):
        if told.status not in (429, 503) or told.retry_after is None:
            continue
        occasions += 1
        until = told.at + told.retry_after - TOLERANCE
        early = next((c for c in calls[i + 1:] if c.at < until
                      and c.rate_class == told.rate_class), None)
        if early is not None:
            out.append(Breach("C3", f"{early.method} {early.path} came "
                              f"{early.at - told.at:.2f} s after a {told.status} that said "
                              f"Retry-After: {told.retry_after:g}", (told, early)))
    return occasions, out


def c4_polls_paced_with_etag(calls: list[Call]) -> tuple[int, list[Breach]]:
    last: dict[str, Call] = {}
    occasions, out = 0, []
    for c in calls:
        if c.operation != "getJob" or not c.job_id:
            continue
        before = last.get(c.job_id)
        last[c.job_id] = c
        if before is None:
            continue
        occasions += 1
        if c.at - before.at < MIN_POLL_INTERVAL - TOLERANCE:
            out.append(Breach("C4", f"job {c.job_id} polled {c.at - before.at:.2f} s after the "
                              f"previous poll (at least {MIN_POLL_INTERVAL:g} s apart)",
                              (before, c)))
        elif before.etag and not c.if_none_match:
            out.append(Breach("C4", f"job {c.job_id} polled again without If-None-Match, "
                              "though the previous answer had an ETag", (before, c)))
    return occasions, out


def c5_no_poll_after_end(calls: list[Call]) -> tuple[int, list[Breach]]:
    ended: dict[str, Call] = {}
    occasions, out = 0, []
    for c in calls:
        if c.operation != "getJob" or not c.job_id:
            continue
        seen = ended.get(c.job_id)
        if seen is not None:
            out.append(Breach("C5", f"job {c.job_id} polled after it was seen "
                              f"{seen.job_status}", (seen, c)))
        elif c.job_status in TERMINAL:
            occasions += 1
            ended[c.job_id] = c
    return occasions, out


def c6_conflict_waits(calls: list[Call]) -> tuple[int, list[Breach]]:
    occasions, out = 0, []
    for i, busy in enumerate(calls):
        if busy.operation != "regenerateContent" or busy.error_code != "CONFLICT":
            continue
        occasions += 1
        for c in calls[i + 1:]:
            if c.operation == "getJob" and busy.job_id and c.job_id == busy.job_id:
                break  # it waited on the running job
            if c.operation == "regenerateContent" and c.container_id == busy.container_id:
                if c.at - busy.at < CONFLICT_WAIT - TOLERANCE:
                    out.append(Breach("C6", f"regenerate of {busy.container_id} sent again "
                                      f"{c.at - busy.at:.2f} s after 409 CONFLICT, without "
                                      f"reading the running job {busy.job_id}", (busy, c)))
                break
    return occasions, out


JUDGES: dict[str, Callable[[list[Call]], tuple[int, list[Breach]]]] = {
    "C1": c1_retries_reuse_the_key, "C2": c2_key_never_reused,
    "C3": c3_retry_after_respected, "C4": c4_polls_paced_with_etag,
    "C5": c5_no_poll_after_end, "C6": c6_conflict_waits,
}


def judge(calls: Iterable[Call]) -> dict[str, list[RuleResult]]:
    """Each client's calls, judged by every client rule: client -> one result per rule."""
    by_client: dict[str, list[Call]] = {}
    for c in sorted(calls, key=lambda c: c.at):
        by_client.setdefault(c.client, []).append(c)
    report = {}
    for client, own in by_client.items():
        results = []
        for rule, fn in JUDGES.items():
            occasions, breaches = fn(own)
            verdict = "failed" if breaches else "passed" if occasions else "not observed"
            results.append(RuleResult(rule, RULES[rule], verdict, occasions, breaches))
        report[client] = results
    return report
