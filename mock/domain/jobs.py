"""Jobs on a clock (D7): stages in order, monotonic progress, sticky terminal states.

A job's state is a function of its start time and the clock; nothing runs in the background.
Whoever reads a job or its container first after a stage boundary moves it forward (`advance`),
inside the store transaction, so the completion effects happen exactly once.

A job nobody reads must still end on time: its credits, its container's busy flag and its
retention depend on it. Every job is entered in a deadline index when it starts (`due`
documents: a schedule of buckets, each listing its jobs and their deadlines), and `settle_due`
ends the jobs whose deadline has passed. The service runs it before the operations that read
balances (exactly) and, at most once per `DueSweeper.interval` of clock time, before any other
(so retention sees quiet orgs' jobs end too). Its cost is the number of due jobs, each settled
once, never the size of a project or of the store.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from mock.domain import effects
from mock.domain.clock import iso
from mock.store.base import Store, Tx

STAGES = ("queued", "planning", "generating_visuals", "assembling", "finalizing")
TERMINAL = frozenset({"completed", "failed", "canceled"})
# Where a job asked to fail (Prefer: job=fail) fails.
FAIL_AT_STAGE = STAGES.index("generating_visuals")
UNCANCELABLE_STAGE = STAGES.index("finalizing")
DUE, SCHEDULE = "due", "schedule"
DUE_BUCKET_SECONDS = 1.0  # width of a deadline bucket, in clock seconds
SETTLE_LIMIT = 50  # jobs looked at per sweep; the rest wait for the next request


def start(tx: Tx, *, job_id: str, kind: str, org_id: str, project_id: str,
          container_ids: list[str], now: float, stage_seconds: float, fail: bool, cost: int,
          pending: dict[str, Any], retention: float | None = None) -> dict[str, Any]:
    job = {
        "jobId": job_id, "kind": kind, "orgId": org_id, "projectId": project_id,
        "containerIds": container_ids, "t0": now, "stageSeconds": max(stage_seconds, 0.001),
        "failAt": FAIL_AT_STAGE if fail else None, "cost": cost, "pending": pending,
        "status": "running", "stageIndex": 0, "startedAt": iso(now), "updatedAt": iso(now),
        "finishedAt": None, "result": None, "error": None, "retention": retention,
    }
    tx.put("job", job_id, job)
    _index(tx, job)
    return job


def deadline(job: dict[str, Any]) -> float:
    """When the clock ends the job: completion, or the failure a `job=fail` asked for."""
    stages = job["failAt"] + 1 if job["failAt"] is not None else len(STAGES)
    return job["t0"] + stages * job["stageSeconds"]


def _index(tx: Tx, job: dict[str, Any]) -> None:
    at = deadline(job)
    bucket = str(math.floor(at / DUE_BUCKET_SECONDS))
    doc = tx.get(DUE, bucket) or {"jobs": {}}
    doc["jobs"][job["jobId"]] = at
    tx.put(DUE, bucket, doc)
    schedule = tx.get(DUE, SCHEDULE) or {"buckets": {}}
    if schedule["buckets"].get(bucket, math.inf) > at:
        schedule["buckets"][bucket] = at  # the earliest deadline in the bucket
        tx.put(DUE, SCHEDULE, schedule)


def settle_due(tx: Tx, now: float, limit: int = SETTLE_LIMIT) -> tuple[bool, float | None]:
    """End every indexed job whose deadline has passed (at most `limit` looked at).

    Returns whether more are due already, and the earliest deadline still waiting.
    """
    schedule = tx.get(DUE, SCHEDULE)
    if not schedule or not schedule["buckets"]:
        return False, None
    seen = 0
    more = changed = False
    for bucket, earliest in sorted(schedule["buckets"].items(), key=lambda kv: kv[1]):
        if earliest > now:
            break
        if seen >= limit:
            more = True
            break
        doc = tx.get(DUE, bucket) or {"jobs": {}}
        changed = True
        rest: dict[str, float] = {}
        for job_id, at in doc["jobs"].items():
            if at > now or seen >= limit:
                more = more or at <= now
                rest[job_id] = at
                continue
            seen += 1
            job = tx.get("job", job_id)
            if job is not None and job["status"] == "running":
                advance(tx, job, now)
        if rest:
            tx.put(DUE, bucket, {"jobs": rest})
            schedule["buckets"][bucket] = min(rest.values())
        else:
            tx.delete(DUE, bucket)
            del schedule["buckets"][bucket]
    if changed:
        tx.put(DUE, SCHEDULE, schedule)
    return more, min(schedule["buckets"].values(), default=None)


class DueSweeper:
    """Runs `settle_due` from the service: always when asked to be exact, else at most once
    per `interval` of clock time per process (or sooner when a known deadline comes)."""

    def __init__(self, interval: float = DUE_BUCKET_SECONDS) -> None:
        self.interval = interval
        self._next = -math.inf

    def run(self, store: Store, now: float, *, exact: bool = False) -> None:
        if not exact and now < self._next:
            return
        self._note(now, *store.atomic(lambda tx: settle_due(tx, now)))

    def run_in(self, tx: Tx, now: float, *, exact: bool = False) -> None:
        """`run` inside the caller's transaction (the operation's own: no extra round trip)."""
        if not exact and now < self._next:
            return
        self._note(now, *settle_due(tx, now))

    def _note(self, now: float, more: bool, earliest: float | None) -> None:
        if more:
            self._next = now
        else:
            self._next = now + self.interval if earliest is None else min(
                now + self.interval, earliest)


def advance(tx: Tx, job: dict[str, Any], now: float) -> dict[str, Any]:
    """Bring the job to the state the clock implies; apply completion or failure once."""
    if job["status"] in TERMINAL:
        return job
    span = job["stageSeconds"]
    by_clock = math.floor((now - job["t0"]) / span)
    fail_at = job["failAt"]
    if fail_at is not None and by_clock > fail_at:
        job["stageIndex"] = max(job["stageIndex"], fail_at)
        at = iso(job["t0"] + (fail_at + 1) * span)
        _finish(job, "failed", at)
        job["error"] = {"code": "GENERATION_FAILED",
                        "message": "The visual generation step failed; the container keeps its "
                                   "previous content."}
        effects.on_failed(tx, job, at)
    elif by_clock >= len(STAGES):
        job["stageIndex"] = len(STAGES) - 1
        at = iso(job["t0"] + len(STAGES) * span)
        _finish(job, "completed", at)
        job["result"] = effects.on_completed(tx, job, at)
    elif by_clock > job["stageIndex"]:
        job["stageIndex"] = by_clock
        job["updatedAt"] = iso(job["t0"] + by_clock * span)
    else:
        return job
    _save(tx, job)
    return job


def _save(tx: Tx, job: dict[str, Any]) -> None:
    """An ended job is kept for its retention period, then forgotten."""
    ended = job["status"] in TERMINAL
    tx.put("job", job["jobId"], job, ttl=job.get("retention") if ended else None)


def cancel(tx: Tx, job: dict[str, Any], now: float) -> None:
    """R11 via D7: the job ends as canceled and its containers keep their previous content."""
    at = iso(now)
    _finish(job, "canceled", at)
    job["error"] = {"code": "CANCELED", "message": "The job was canceled on request."}
    effects.on_canceled(tx, job, at)
    _save(tx, job)


def _finish(job: dict[str, Any], status: str, at: str) -> None:
    job["status"] = status
    job["updatedAt"] = at
    job["finishedAt"] = at


def progress(job: dict[str, Any]) -> float:
    if job["status"] == "completed":
        return 1.0
    return round(job["stageIndex"] / len(STAGES), 4)


def view(job: dict[str, Any]) -> dict[str, Any]:
    """The job as getJob returns it."""
    out: dict[str, Any] = {
        "jobId": job["jobId"], "kind": job["kind"], "status": job["status"],
        "stage": STAGES[job["stageIndex"]], "progress": progress(job),
        "containerId": job["containerIds"][0], "projectId": job["projectId"],
        "locationUrl": f"/v1/jobs/{job['jobId']}", "startedAt": job["startedAt"],
        "updatedAt": job["updatedAt"],
    }
    if job["kind"] == "content_generate":
        out["containerIds"] = list(job["containerIds"])
    if job["finishedAt"]:
        out["finishedAt"] = job["finishedAt"]
    if job["result"] is not None:
        out["result"] = job["result"]
    if job["error"] is not None:
        out["error"] = job["error"]
    return out


def accepted(job: dict[str, Any]) -> dict[str, Any]:
    """R1: the 202 envelope of a job that has just started."""
    out = {
        "jobId": job["jobId"], "kind": job["kind"], "status": "running", "stage": "queued",
        "progress": 0, "containerId": job["containerIds"][0], "projectId": job["projectId"],
        "locationUrl": f"/v1/jobs/{job['jobId']}", "startedAt": job["startedAt"],
    }
    if job["kind"] == "content_generate":
        out["containerIds"] = list(job["containerIds"])
    return out


def etag(view_doc: dict[str, Any]) -> str:
    """D7: changes whenever the job's visible state changes."""
    raw = orjson.dumps(view_doc, option=orjson.OPT_SORT_KEYS)
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
