"""D7: stages in order, monotonic progress, sticky terminal states, ETag/304, cancel."""

from __future__ import annotations

import concurrent.futures as cf

from conformance.context import Ctx
from conformance.failures import NotRunnable, expect
from conformance.registry import check

STAGES = ["queued", "planning", "generating_visuals", "assembling", "finalizing"]


def _run(ctx: Ctx) -> list[dict]:
    cid = ctx.container()
    r = ctx.api.regenerate(cid, {})
    expect(r.status_code == 202, "regenerate starts a job", received=r.status_code)
    return [r.json(), *ctx.wait(r.json()["locationUrl"], steady=True)]


@check("D7", "Stages follow the documented order", needs=("containers",))
def d7_stage_order(ctx: Ctx) -> None:
    # A poll sees a stage only if it lands inside it: watch three jobs at once so that a fast
    # implementation, or a busy client, still shows enough transitions to judge the order.
    watched = 3 if ctx.target.project_id else 1
    with cf.ThreadPoolExecutor(watched) as pool:
        runs = list(pool.map(lambda _: _run(ctx), range(watched)))
    for states in runs:
        indexes = [STAGES.index(s["stage"]) for s in states if s["stage"] in STAGES]
        expect(len(indexes) == len(states), "every stage is a documented one",
               expected=STAGES, received=[s["stage"] for s in states])
        expect(indexes == sorted(indexes), "stages never go back",
               expected=" -> ".join(STAGES), received=[s["stage"] for s in states])


@check("D7", "Progress stays in [0, 1] and never decreases", needs=("containers",))
def d7_progress_monotonic(ctx: Ctx) -> None:
    states = _run(ctx)
    progress = [s["progress"] for s in states]
    expect(all(0 <= p <= 1 for p in progress), "progress is within [0, 1]", received=progress)
    expect(progress == sorted(progress), "progress never decreases", received=progress)


@check("D7", "A completed job has finishedAt and result; terminal states never change",
       needs=("containers",))
def d7_terminal_sticky(ctx: Ctx) -> None:
    final = _run(ctx)[-1]
    expect(final["status"] == "completed", "the job completes", received=final["status"])
    expect(bool(final.get("finishedAt")) and isinstance(final.get("result"), dict),
           "a completed job has finishedAt and result", received=final)
    for _ in range(3):
        again = ctx.api.get(final["locationUrl"]).json()
        expect(again == final, "a terminal job never changes", expected=final, received=again)


@check("D7", "getJob sends an ETag; a matching If-None-Match answers 304",
       needs=("containers",))
def d7_etag_304(ctx: Ctx) -> None:
    final = _run(ctx)[-1]
    r = ctx.api.get(final["locationUrl"])
    tag = r.headers.get("etag")
    expect(bool(tag), "getJob sends an ETag", received=dict(r.headers))
    r304 = ctx.api.get(final["locationUrl"], headers={"If-None-Match": tag})
    expect(r304.status_code == 304, "a matching If-None-Match answers 304", expected=304,
           received=r304.status_code)
    expect(not r304.content, "a 304 has no body", received=r304.text[:100])
    other = ctx.api.get(final["locationUrl"], headers={"If-None-Match": '"stale"'})
    expect(other.status_code == 200, "a stale ETag gets the job", expected=200,
           received=other.status_code)


@check("D7", "Cancel: 202 accepted for a running job, 200 accepted:false once ended",
       needs=("containers",))
def d7_cancel(ctx: Ctx) -> None:
    cid = ctx.container()
    r = ctx.api.regenerate(cid, {})
    expect(r.status_code == 202, "regenerate starts a job", received=r.status_code)
    job_id = r.json()["jobId"]
    cancel = ctx.api.post(f"/v1/jobs/{job_id}/cancel")
    final = ctx.wait(r.json()["locationUrl"])[-1]
    if cancel.status_code == 202:
        expect(cancel.json() == {"jobId": job_id, "accepted": True},
               "an accepted cancel answers {jobId, accepted: true}", received=cancel.json())
        expect(final["status"] == "canceled", "the canceled job ends as canceled",
               received=final["status"])
    elif cancel.status_code == 409:
        code = cancel.json()["error"].get("details", {}).get("subcode")
        expect(code == "JOB_CANCEL_UNAVAILABLE", "a refused cancel names JOB_CANCEL_UNAVAILABLE",
               received=cancel.text[:200])
        raise NotRunnable("the job was past the point where it can be canceled")
    again = ctx.api.post(f"/v1/jobs/{job_id}/cancel")
    reasons = {"completed": "ALREADY_COMPLETED", "failed": "ALREADY_FAILED",
               "canceled": "ALREADY_CANCELED"}
    expect(again.status_code == 200 and again.json().get("accepted") is False,
           "cancelling an ended job answers 200 accepted:false", expected=200,
           received=f"{again.status_code} {again.text[:200]}")
    expect(again.json().get("reason") == reasons[final["status"]], "the reason names the end",
           expected=reasons[final["status"]], received=again.json().get("reason"))
