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
    """Sends regenerateContent to a container twice, right after each other, with the same new
    Idempotency-Key and the same body (`brief.cta` a random "Replay ..." text).

    Fails when the first is not 202 or is marked Idempotent-Replayed; when the repeat is marked
    `Idempotent-Replayed: true` but differs from the first in status or body bytes; or when it is
    unmarked yet succeeds or repeats the first status (it ran again; an unmarked 409 or 5xx is
    tolerated).
    """
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
    """Sends regenerateContent to a container with a new Idempotency-Key and a random
    `brief.angle`, waits for the job to end, then sends the same request with the same key again.

    Fails when the first is not 202, when the job does not end within --job-timeout, or when the
    repeat is not the first 202 again (same status and body bytes, `Idempotent-Replayed: true`;
    judged as in d6_replay_identical).
    """
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
    """Sends regenerateContent to a container with `{"brief": {"cta": "One"}}` and a new
    Idempotency-Key, then at once with the same key and `{"brief": {"cta": "Two"}}`; waits for the
    first job if it started.

    Fails when the second request is not answered 409 with error.code IDEMPOTENCY_CONFLICT.
    """
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
       needs=("containers",), burst=True)
def d6_concurrent_duplicates(ctx: Ctx) -> None:
    """Sends twelve identical regenerateContent requests at once (one new Idempotency-Key,
    `brief.angle` "Twelve at once") to one container, from twelve clients of --api-key.

    Fails when none is answered 202, when the 202s name more than one jobId or differ in body
    bytes, or when an answer that is not 202 is other than 409 IDEMPOTENCY_IN_PROGRESS with a
    Retry-After header. Inconclusive when none is 202 and the first answer is 402 BILLING_EXHAUSTED
    or 403 FORBIDDEN_SCOPE.
    """
    cid = ctx.container()
    key = new_key()
    body = {"brief": {"angle": "Twelve at once"}}
    clients = [ctx.client(ctx.key) for _ in range(12)]
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
    """Sends regenerateContent to a container with an invalid body (`brief.topic` empty) and a new
    Idempotency-Key, then the corrected body (`brief.topic` "Corrected") with the same key.

    Fails when the invalid body is not answered 422, or when the corrected retry is not answered
    202 (the 422 was stored against the key).
    """
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
    """Sends regenerateContent with `{}` for a random missing container id twice, with the same new
    Idempotency-Key.

    Fails when either answer is not 404, or when the second does not repeat the first body byte for
    byte with `Idempotent-Replayed: true`.
    """
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
