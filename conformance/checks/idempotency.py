"""D6: idempotent replays, conflicts, concurrent duplicates, what is stored."""

from __future__ import annotations

import concurrent.futures as cf
import uuid

from layers_kit.conformance import judges
from layers_kit.conformance.client import new_key
from layers_kit.conformance.context import Ctx
from layers_kit.conformance.failures import Violation, expect
from layers_kit.conformance.registry import check


@check("D6", "Same key and body: the first response again, byte for byte, marked replayed",
       needs=("containers",))
def d6_replay_identical(ctx: Ctx) -> None:
    cid = ctx.container()
    key = new_key()
    body = {"brief": {"cta": f"Replay {uuid.uuid4().hex[:6]}"}}
    first = ctx.api.regenerate(cid, body, key=key)
    envelope = ctx.started(first, "the first request starts a job")
    again = ctx.api.regenerate(cid, body, key=key)
    _same_response(first, again)
    expect("idempotent-replayed" not in first.headers, "the first answer is not marked",
           received=first.headers.get("idempotent-replayed"), response=first)
    ctx.wait(ctx.location(envelope, first))


def _same_response(first, again) -> None:
    """D6's replay judge (shared with the proxy) on a repeated request: the first answer
    again, byte for byte, marked replayed."""
    for finding in judges.replay(
            first=judges.Answer.of(first.status_code, first.content),
            again=judges.Answer.of(again.status_code, again.content),
            replayed=again.headers.get("idempotent-replayed") == "true",
            same_request=True, first_use=False):
        raise Violation(finding.message,
                        expected=first.json() if _json(first) else finding.expected,
                        received=again.json() if _json(again) else finding.received,
                        exchange=getattr(again, "exchange", None))


def _json(r) -> bool:
    try:
        r.json()
        return True
    except ValueError:
        return False


@check("D6", "A replay after the job has moved on is still the first response, byte for byte",
       needs=("containers",))
def d6_replay_after_job_moved(ctx: Ctx) -> None:
    cid = ctx.container()
    key = new_key()
    body = {"brief": {"angle": f"Replayed later {uuid.uuid4().hex[:6]}"}}
    first = ctx.api.regenerate(cid, body, key=key)
    envelope = ctx.started(first, "the first request starts a job")
    final = ctx.wait(ctx.location(envelope, first))[-1]
    expect(final.get("status") != "running", "the job ends", received=final)
    _same_response(first, ctx.api.regenerate(cid, body, key=key))


@check("D6", "Same key, other body: 409 IDEMPOTENCY_CONFLICT", needs=("containers",))
def d6_conflict(ctx: Ctx) -> None:
    cid = ctx.container()
    key = new_key()
    first = ctx.api.regenerate(cid, {"brief": {"cta": "One"}}, key=key)
    other = ctx.api.regenerate(cid, {"brief": {"cta": "Two"}}, key=key)
    code = other.json().get("error", {}).get("code") if other.status_code >= 400 else None
    expect(other.status_code == 409 and code == "IDEMPOTENCY_CONFLICT",
           "a reused key with another body answers 409 IDEMPOTENCY_CONFLICT",
           expected="409 IDEMPOTENCY_CONFLICT", received=f"{other.status_code} {other.text[:200]}")
    if first.status_code == 202:
        ctx.wait(ctx.location(first.json(), first))


@check("D6", "Concurrent duplicates: one job; the rest replay or answer IDEMPOTENCY_IN_PROGRESS",
       needs=("containers",))
def d6_concurrent_duplicates(ctx: Ctx) -> None:
    cid = ctx.container()
    key = new_key()
    body = {"brief": {"angle": "Twelve at once"}}
    clients = [ctx.client(ctx.target.api_key) for _ in range(12)]
    with cf.ThreadPoolExecutor(len(clients)) as pool:
        responses = list(pool.map(lambda c: c.regenerate(cid, body, key=key), clients))
    accepted = [r for r in responses if r.status_code == 202]
    if not accepted:
        ctx.refused(responses[0], "the duplicates")
    expect(bool(accepted), "at least one duplicate is accepted",
           received=[r.status_code for r in responses])
    jobs = {r.json()["jobId"] for r in accepted}
    expect(len(jobs) == 1, "concurrent duplicates start exactly one job", expected=1,
           received=sorted(jobs))
    expect(len({r.content for r in accepted}) == 1, "every 202 has the same body bytes",
           received=len({r.content for r in accepted}))
    for r in responses:
        if r.status_code != 202:
            code = r.json().get("error", {}).get("code")
            expect(r.status_code == 409 and code == "IDEMPOTENCY_IN_PROGRESS",
                   "a duplicate that is not a replay answers 409 IDEMPOTENCY_IN_PROGRESS",
                   expected="409 IDEMPOTENCY_IN_PROGRESS", received=f"{r.status_code} {code}")
            expect(r.headers.get("retry-after") is not None,
                   "IDEMPOTENCY_IN_PROGRESS carries Retry-After", received=dict(r.headers))
    ctx.wait(ctx.location(accepted[0].json(), accepted[0]))


@check("D6", "Validation failures are not stored: the corrected retry with the key succeeds",
       needs=("containers",))
def d6_errors_not_stored(ctx: Ctx) -> None:
    cid = ctx.container()
    key = new_key()
    bad = ctx.api.regenerate(cid, {"brief": {"topic": ""}}, key=key)
    expect(bad.status_code == 422, "an invalid body answers 422", expected=422,
           received=bad.status_code)
    good = ctx.api.regenerate(cid, {"brief": {"topic": "Corrected"}}, key=key)
    envelope = ctx.started(good, "the corrected retry with the same key is processed")
    ctx.wait(ctx.location(envelope, good))


@check("D6", "Outcomes that reached the operation are stored: a 404 replays")
def d6_stored_not_found(ctx: Ctx) -> None:
    key = new_key()
    missing = f"cnt_{uuid.uuid4()}"
    first = ctx.api.regenerate(missing, {}, key=key)
    again = ctx.api.regenerate(missing, {}, key=key)
    expect(first.status_code == again.status_code == 404, "both answers are 404",
           received=(first.status_code, again.status_code))
    expect(again.content == first.content and
           again.headers.get("idempotent-replayed") == "true",
           "the 404 is replayed with the first body and the replay marker",
           received=again.headers.get("idempotent-replayed"))
