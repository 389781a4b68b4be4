"""D7: stages in order, monotonic progress, sticky terminal states, ETag/304, cancel.

Stage and progress checks judge only what their polls saw: a poll sees a stage only if it
lands inside it. Each has an observation floor (at least two running stages seen, else
`inconclusive`), and the kit adapts its polling to the target's stage length: it polls a
quarter of an observed stage, and watches another job faster when it saw too little.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from layers_kit.conformance import judges
from layers_kit.conformance.context import Ctx
from layers_kit.conformance.failures import Inconclusive, Violation, expect
from layers_kit.conformance.registry import check

STAGES = list(judges.STAGES)
# Fields of a job that a terminal state must keep (D7); others the schema allows may vary.
TERMINAL_FIELDS = ("jobId", "kind", "status", "stage", "progress", "containerId", "startedAt",
                   "updatedAt", "finishedAt", "result", "error")
FLOOR = 2  # running stages a stage or progress check must see to judge anything
ATTEMPTS = 4
FASTEST = 0.005  # seconds: the kit polls no faster than this


@dataclass
class Watch:
    """One job watched with steady polls: the 202 envelope, then every state seen."""

    envelope: dict[str, Any]
    states: list[dict[str, Any]] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)
    interval: float = 0.0

    @property
    def running(self) -> list[dict[str, Any]]:
        return [s for s in [self.envelope, *self.states] if s.get("status") == "running"]

    def stages_seen(self) -> int:
        return len({s.get("stage") for s in self.running})

    def reads(self) -> list[tuple[judges.JobRead, httpx.Response]]:
        """Each poll as D7's judges read it (the 202 envelope is no read of the job)."""
        out = []
        for r in self.responses:
            read = judges.JobRead.of(r.content, r.headers.get("etag"))
            if read is not None:
                out.append((read, r))
        return out


def _judge_pairs(pairs: list[tuple[judges.JobRead, httpx.Response]],
                 *judge: Callable[..., list[judges.Finding]]) -> int:
    """D7's judges (shared with the proxy) on each read and each pair of successive reads;
    the first finding fails the check. Returns how many pairs showed a change of the job."""
    changes = 0
    for read, response in pairs:
        for finding in judges.job_read(read):
            if judges.job_read in judge or "ETag" not in finding.message:
                _fail(finding, response)
    for (before, _), (after, response) in itertools.pairwise(pairs):
        changes += before.digest != after.digest
        for j in judge:
            if j is judges.job_read:
                continue
            for finding in j(before, after):
                _fail(finding, response)
    return changes


def _fail(finding: judges.Finding, response: httpx.Response) -> None:
    raise Violation(finding.message, expected=finding.expected, received=finding.received,
                    exchange=getattr(response, "exchange", None))


def _watch(ctx: Ctx, cid: str, interval: float) -> Watch:
    r = ctx.api.regenerate(cid, {})
    w = Watch(ctx.started(r, "regenerate starts a job"), interval=interval)
    location = ctx.location(w.envelope, r)
    deadline = time.monotonic() + ctx.target.job_timeout
    last_change, stage = time.monotonic(), w.envelope.get("stage")
    delay = interval
    while True:
        resp = ctx.api.get(location)
        expect(resp.status_code == 200, "getJob answers 200 for a job the caller started",
               expected=200, received=f"{resp.status_code} {resp.text[:200]}", response=resp)
        w.responses.append(resp)
        w.states.append(resp.json())
        state = w.states[-1]
        if state.get("status") != "running":
            return w
        expect(time.monotonic() < deadline, "the job ends within --job-timeout",
               received=state, response=resp)
        if state.get("stage") != stage:  # adapt: a quarter of the stage just observed
            now = time.monotonic()
            if stage is not None and len(w.states) > 1:
                delay = min(max(interval, (now - last_change) / 4), 10.0)
            last_change, stage = now, state.get("stage")
        time.sleep(delay)


def _watch_enough(ctx: Ctx, what: str, jobs: int = 1) -> list[Watch]:
    """Watch jobs until at least one showed FLOOR running stages, polling faster each time."""
    interval = ctx.target.poll_interval
    cids = [ctx.container() for _ in range(jobs)]
    watched: list[Watch] = []
    for _ in range(ATTEMPTS):
        with cf.ThreadPoolExecutor(len(cids)) as pool:
            batch = list(pool.map(lambda c, i=interval: _watch(ctx, c, i), cids))
        watched += batch
        if any(w.stages_seen() >= FLOOR for w in batch):
            return watched
        interval = max(FASTEST, interval / 4)
    seen = max(w.stages_seen() for w in watched)
    raise Inconclusive(f"{what}: {len(watched)} jobs polled down to every {interval:g} s showed "
                       f"at most {seen} running stage(s): the stages pass faster than a poll",
                       needed=f"at least {FLOOR} running stages observed in one job")


@check("D7", "Stages follow the documented order", needs=("containers",))
def d7_stage_order(ctx: Ctx) -> None:
    """Regenerates containers (`{}`) and polls getJob at a steady interval until each job ends:
    three jobs at once with --project-id, one otherwise; up to four rounds, each polling four times
    faster, until a job shows at least two running stages.

    Fails when a polled stage is not one of queued, planning, generating_visuals, assembling,
    finalizing, when the stage or progress goes back between two polls, when progress leaves [0,
    1], or when a terminal status changes. Inconclusive when no job showed two running stages.
    """
    # Watch several jobs at once so that a busy client still sees enough transitions.
    watched = _watch_enough(ctx, "stage order", jobs=3 if ctx.target.project_id else 1)
    for w in watched:
        running = [s["stage"] for s in w.running]
        expect(all(s in STAGES for s in running), "the job's stage is not a documented one",
               expected=" -> ".join(STAGES), received=running, response=w.responses[-1])
        _judge_pairs(w.reads(), judges.job_progress)


@check("D7", "Progress stays in [0, 1] and never decreases", needs=("containers",))
def d7_progress_monotonic(ctx: Ctx) -> None:
    """Regenerates a container (`{}`) and polls getJob at a steady interval until the job ends; up
    to four rounds, each polling four times faster, until a job shows at least two running stages.

    Fails when a progress (the 202 envelope's included) is not a number in [0, 1], when progress or
    the stage goes back between two polls, when a polled stage is not a documented one, or when a
    terminal status changes. Inconclusive when no job showed two running stages.
    """
    watched = _watch_enough(ctx, "progress")
    for w in watched:
        progress = [s.get("progress") for s in [w.envelope, *w.states]]
        expect(all(isinstance(p, int | float) and 0 <= p <= 1 for p in progress),
               "the job's progress is outside [0, 1]", received=progress,
               response=w.responses[-1])
        _judge_pairs(w.reads(), judges.job_progress)


@check("D7", "A completed job has finishedAt and result; terminal states never change",
       needs=("containers",))
def d7_terminal_sticky(ctx: Ctx) -> None:
    """Regenerates a container (`{}`), waits for the job to complete, then reads it with getJob
    three more times.

    Fails when the completed job lacks finishedAt or a result object, when a later read differs
    from the final state in jobId, kind, status, stage, progress, containerId, startedAt,
    updatedAt, finishedAt, result or error, or when progress goes back between the reads.
    Inconclusive when the job ends other than completed.
    """
    final = ctx.completes(ctx.api.regenerate(ctx.container(), {}))
    expect(bool(final.get("finishedAt")) and isinstance(final.get("result"), dict),
           "a completed job has finishedAt and result", received=final)
    want = {k: final.get(k) for k in TERMINAL_FIELDS if k in final}
    reads = []
    for _ in range(3):
        r = ctx.api.get(f"/v1/jobs/{final['jobId']}")
        got = {k: r.json().get(k) for k in want}
        read = judges.JobRead.of(r.content, r.headers.get("etag"))
        if read is not None:
            reads.append((read, r))
        _judge_pairs(reads, judges.job_progress)
        expect(got == want, "a terminal job never changes", expected=want, received=got,
               response=r)


@check("D7", "getJob sends an ETag; a matching If-None-Match answers 304",
       needs=("containers",))
def d7_etag_304(ctx: Ctx) -> None:
    """Regenerates a container (`{}`), waits for the job to complete, then sends getJob three
    times: plain, with `If-None-Match: <the ETag it got>`, and with `If-None-Match: "stale"`.

    Fails when the plain read has no ETag, when the matching If-None-Match is not answered 304 with
    an empty body, or when the stale one is not answered 200. Inconclusive when the job ends other
    than completed.
    """
    final = ctx.completes(ctx.api.regenerate(ctx.container(), {}))
    path = f"/v1/jobs/{final['jobId']}"
    r = ctx.api.get(path)
    tag = r.headers.get("etag")
    expect(bool(tag), "getJob sends an ETag", received=dict(r.headers), response=r)
    r304 = ctx.api.get(path, headers={"If-None-Match": tag})
    expect(r304.status_code == 304, "a matching If-None-Match answers 304", expected=304,
           received=r304.status_code, response=r304)
    expect(not r304.content, "a 304 has no body", received=r304.text[:100], response=r304)
    other = ctx.api.get(path, headers={"If-None-Match": '"stale"'})
    expect(other.status_code == 200, "a stale ETag gets the job", expected=200,
           received=other.status_code, response=other)


@check("D7", "The ETag changes whenever the job changes, and only then", needs=("containers",))
def d7_etag_tracks_changes(ctx: Ctx) -> None:
    """Regenerates a container (`{}`) and polls getJob at a steady interval until the job ends (up
    to four rounds, each polling four times faster, until a job shows two running stages), then
    reads each ended job once more.

    Fails when a read has no ETag, when two successive reads show a different job (parsed JSON)
    under the same ETag or the same job under different ETags, or when a read shows an undocumented
    stage or a progress outside [0, 1]. Inconclusive when no job showed two running stages, or no
    two successive reads saw the job change.
    """
    watched = _watch_enough(ctx, "ETag changes")
    pairs = 0
    for w in watched:
        again = ctx.api.get(f"/v1/jobs/{w.envelope['jobId']}")  # the terminal state, twice
        read = judges.JobRead.of(again.content, again.headers.get("etag"))
        pairs += _judge_pairs([*w.reads(), *([(read, again)] if read else [])],
                              judges.job_read, judges.job_etag)
    if pairs == 0:
        raise Inconclusive("no two polls saw different states of a job",
                           needed="a job observed in two states")


@check("D7", "Cancel: 202 accepted for a running job, 200 accepted:false once ended",
       needs=("containers",))
def d7_cancel(ctx: Ctx) -> None:
    """Regenerates a container (`{}`), sends cancelJob (POST /v1/jobs/{jobId}/cancel) at once,
    waits for the job to end, then sends cancelJob again.

    Fails when the first cancel is answered 202 without `{jobId, accepted: true}` or the job then
    ends other than canceled, is answered 409 without details.subcode JOB_CANCEL_UNAVAILABLE, or
    gets neither 202, 409 nor 200; or when the second is not 200 `accepted: false` with the reason
    ALREADY_COMPLETED, ALREADY_FAILED or ALREADY_CANCELED matching how the job ended.
    """
    r = ctx.api.regenerate(ctx.container(), {})
    envelope = ctx.started(r)
    job_id = envelope["jobId"]
    cancel = ctx.api.post(f"/v1/jobs/{job_id}/cancel")
    final = ctx.wait(ctx.location(envelope, r))[-1]
    if cancel.status_code == 202:
        got = {"jobId": cancel.json().get("jobId"), "accepted": cancel.json().get("accepted")}
        want = {"jobId": job_id, "accepted": True}
        expect(got == want, "an accepted cancel answers {jobId, accepted: true}",
               expected=want, received=got, response=cancel)
        expect(final["status"] == "canceled", "the canceled job ends as canceled",
               expected="canceled", received=final["status"])
    elif cancel.status_code == 409:
        details = (cancel.json().get("error") or {}).get("details") or {}
        expect(details.get("subcode") == "JOB_CANCEL_UNAVAILABLE",
               "a refused cancel names JOB_CANCEL_UNAVAILABLE", received=cancel.text[:200],
               response=cancel)
    else:
        expect(cancel.status_code == 200, "cancel answers 202, 409 or (ended) 200",
               received=f"{cancel.status_code} {cancel.text[:200]}", response=cancel)
    again = ctx.api.post(f"/v1/jobs/{job_id}/cancel")
    reasons = {"completed": "ALREADY_COMPLETED", "failed": "ALREADY_FAILED",
               "canceled": "ALREADY_CANCELED"}
    expect(again.status_code == 200 and again.json().get("accepted") is False,
           "cancelling an ended job answers 200 accepted:false", expected=200,
           received=f"{again.status_code} {again.text[:200]}", response=again)
    expect(again.json().get("reason") == reasons[final["status"]], "the reason names the end",
           expected=reasons[final["status"]], received=again.json().get("reason"),
           response=again)



@check("D7", "Cancel in finalizing: 409 CONFLICT JOB_CANCEL_UNAVAILABLE, and the job completes",
       needs=("containers",))
def d7_cancel_in_finalizing(ctx: Ctx) -> None:
    """Regenerates a container (`{}`) and polls getJob at a steady interval (a quarter of the
    stages it sees pass) until the job is running in `finalizing`, then sends cancelJob at once
    and waits for the job to end; up to four jobs, each polled four times faster, until a poll
    lands in `finalizing`.

    Fails when that cancel is answered other than 409 with error.code CONFLICT and
    error.details.subcode JOB_CANCEL_UNAVAILABLE (a 202 means a job in `finalizing` was
    canceled), or when the job then ends other than completed. Inconclusive when no poll saw the
    job in `finalizing` (the stage passes faster than a poll), or the job always ended between
    the poll and the cancel.
    """
    interval = ctx.target.poll_interval
    missed: list[str] = []
    for _ in range(ATTEMPTS):
        cid = ctx.container()
        r = ctx.api.regenerate(cid, {})
        envelope = ctx.started(r, "regenerate starts a job")
        location = ctx.location(envelope, r)
        deadline = time.monotonic() + ctx.target.job_timeout
        stage, changed, delay = envelope.get("stage"), time.monotonic(), interval
        cancel = None
        while True:
            state = ctx.api.get(location)
            expect(state.status_code == 200, "getJob answers 200 for a job the caller started",
                   expected=200, received=f"{state.status_code} {state.text[:200]}",
                   response=state)
            job = state.json()
            if job.get("status") != "running":
                break
            if job.get("stage") == "finalizing":
                cancel = ctx.api.post(f"/v1/jobs/{envelope['jobId']}/cancel")
                break
            expect(time.monotonic() < deadline, "the job ends within --job-timeout",
                   received=job, response=state)
            if job.get("stage") != stage:  # a quarter of the stage just seen
                now = time.monotonic()
                delay = min(max(FASTEST, (now - changed) / 4), delay)
                stage, changed = job.get("stage"), now
            time.sleep(delay)
        final = ctx.wait(location)[-1]
        if cancel is None:
            missed.append(f"ended {final.get('status')} unseen in finalizing")
        elif cancel.status_code == 200 and final.get("status") != "canceled":
            missed.append("ended between the poll and the cancel")
        else:
            details = (cancel.json().get("error") or {}).get("details") or {} \
                if cancel.status_code == 409 else {}
            expect(cancel.status_code == 409 and (cancel.json().get("error") or {}).get("code")
                   == "CONFLICT" and details.get("subcode") == "JOB_CANCEL_UNAVAILABLE",
                   "a cancel while the job is finalizing answers 409 CONFLICT "
                   "JOB_CANCEL_UNAVAILABLE", expected="409 CONFLICT JOB_CANCEL_UNAVAILABLE",
                   received=f"{cancel.status_code} {cancel.text[:200]}", response=cancel)
            expect(final.get("status") == "completed", "a job whose cancel was refused in "
                   "finalizing completes", expected="completed", received=final.get("status"))
            return
        interval = max(FASTEST, interval / 4)
    raise Inconclusive(f"no cancel reached a job in finalizing ({'; '.join(missed)}): the "
                       "stage passes faster than a poll",
                       needed="a poll that lands in the finalizing stage")
