"""Jobs on a clock (D7): stages in order, monotonic progress, sticky terminal states.

A job's state is a function of its start time and the clock; nothing runs in the background.
Whoever reads a job or its container first after a stage boundary moves it forward (`advance`),
inside the store transaction, so the completion effects happen exactly once.

A job nobody reads must still end on time: its credits, its container's busy flag and its
retention depend on it. Every job is entered in its org's deadline index when it starts, and
`settle_due` ends an org's jobs whose deadline has passed. The index is one `due` document per
org naming its queues, one queue per job duration (5 stages, or 3 for a `job=fail`, of the
stage length), each a paged first-in-first-out list (`fifo.py`) of (deadline, job id): jobs of
one duration end in the order they started, so a queue is walked from its oldest page and the
walk stops at the first deadline still ahead. A start appends to one page of at most 32
entries: its cost does not grow with the jobs running (one document listing every running job
was rewritten by every start: generates fell from 762 to 170 req/s with 8,700 jobs running).
The service runs it for the caller's org before the
operations that read balances (exactly), and `DueSweeper` for the other orgs whose deadlines
have passed, and for every org at most once per `DueSweeper.interval` of clock time (so
retention sees quiet orgs' jobs end too). Its cost is the number of due jobs, each settled
once, never the size of a project or of the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import orjson

from layers_kit.mock.domain import effects, fifo
from layers_kit.mock.domain.clock import iso
from layers_kit.mock.store.base import Tx

STAGES = ("queued", "planning", "generating_visuals", "assembling", "finalizing")
TERMINAL = frozenset({"completed", "failed", "canceled"})
# Where a job asked to fail (Prefer: job=fail) fails.
FAIL_AT_STAGE = STAGES.index("generating_visuals")
UNCANCELABLE_STAGE = STAGES.index("finalizing")
DUE = "due"  # the deadline index: one document per org, keyed by the org's id
DUE_QUEUE = "dueq"  # its queues: paged FIFO lists named "<orgId>/<duration>"
DUE_BUCKET_SECONDS = 1.0  # clock seconds between sweeps of every org's index, per process
SETTLE_LIMIT = 50  # jobs settled per org per sweep; the rest wait for the next request


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
    started = getattr(_STARTS, "deadlines", None)
    if started is not None:
        started.append(deadline(job))
    return job


# The deadlines of the jobs started by the operation DueSweeper is watching, on this thread
# (`DueSweeper.watch` and `note`): what `note` learns without reading the index back.
_STARTS = threading.local()


def deadline(job: dict[str, Any]) -> float:
    """When the clock ends the job: completion, or the failure a `job=fail` asked for."""
    stages = job["failAt"] + 1 if job["failAt"] is not None else len(STAGES)
    return job["t0"] + stages * job["stageSeconds"]


def _duration(job: dict[str, Any]) -> str:
    return f"{deadline(job) - job['t0']:.6f}"


def _queues(tx: Tx, org_id: str) -> dict[str, Any] | None:
    """The org's index document, `{"queues": [duration, ...]}` (None when empty). A document
    of the former shape (`{"jobs": {jobId: deadline}}`) is moved into queues once."""
    doc = tx.get(DUE, org_id)
    if doc is None or "queues" in doc:
        return doc
    new: dict[str, Any] = {"queues": []}
    for job_id, at in sorted(doc.get("jobs", {}).items(), key=lambda kv: kv[1]):
        job = tx.get("job", job_id)
        dur = _duration(job) if job else "former"
        if dur not in new["queues"]:
            new["queues"].append(dur)
        fifo.push(tx, DUE_QUEUE, f"{org_id}/{dur}", [at, job_id])
    tx.put(DUE, org_id, new)
    return new


def _index(tx: Tx, job: dict[str, Any]) -> None:
    """Enter the job in its org's deadline index: one page of one queue, and the org's
    index document only when the queue is new.

    One index per org, not one for the store: a job start already writes its org (the
    credits it reserves), so the index adds no document that two orgs' requests, or two
    workers serving different orgs, both write.
    """
    org, dur = job["orgId"], _duration(job)
    doc = _queues(tx, org) or {"queues": []}
    if dur not in doc["queues"]:
        doc["queues"].append(dur)
        tx.put(DUE, org, doc)
    fifo.push(tx, DUE_QUEUE, f"{org}/{dur}", [deadline(job), job["jobId"]])


def indexed(tx: Tx, org_id: str) -> dict[str, float]:
    """Every job in the org's index and its deadline (for tests and tools: it reads it all)."""
    out: dict[str, float] = {}
    for dur in (_queues(tx, org_id) or {"queues": []})["queues"]:
        name = f"{org_id}/{dur}"
        h = fifo.head(tx, DUE_QUEUE, name)
        for n in range(h["first"], h["last"] + 1) if h else ():
            out.update({job_id: at for at, job_id in fifo.page(tx, DUE_QUEUE, name, n)})
    return out


def settle_due(tx: Tx, org_id: str, now: float,
               limit: int = SETTLE_LIMIT) -> tuple[bool, float | None]:
    """End the org's indexed jobs whose deadline has passed (at most `limit`), walking each
    queue from its oldest page until a deadline still ahead.

    Returns whether more are due already, and the earliest deadline still waiting.
    """
    doc = _queues(tx, org_id)
    if not doc or not doc["queues"]:
        return False, None
    settled, more, earliest, emptied = 0, False, None, False
    for dur in list(doc["queues"]):
        name = f"{org_id}/{dur}"
        h = fifo.head(tx, DUE_QUEUE, name)
        while h is not None:
            items = fifo.page(tx, DUE_QUEUE, name, h["first"])
            keep = []
            for at, job_id in items:
                if at <= now and settled < limit:
                    settled += 1
                    job = tx.get("job", job_id)
                    if job is not None and job["status"] == "running":
                        advance(tx, job, now)
                else:
                    more = more or at <= now
                    keep.append([at, job_id])
            if keep:
                if len(keep) != len(items):
                    fifo.set_page(tx, DUE_QUEUE, name, h["first"], keep)
                first = min(a for a, _ in keep)
                earliest = first if earliest is None else min(earliest, first)
                break
            was_last = h["first"] >= h["last"]
            fifo.drop_first(tx, DUE_QUEUE, name, h)
            if was_last:
                doc["queues"].remove(dur)
                emptied = True
                h = None
    if emptied:
        if doc["queues"]:
            tx.put(DUE, org_id, doc)
        else:
            tx.delete(DUE, org_id)
    return more, earliest


class DueSweeper:
    """Runs `settle_due` from the service, per org.

    - Exactly, for the caller's org, before the operations that read its balance.
    - For any org whose earliest deadline this process knows has passed (it learns them from
      its own sweeps and from the jobs it starts), on any request.
    - For every org at most once per `interval` of clock time, so that a job another process
      started, and nobody reads, still ends (retention, quiet orgs).
    Its cost is the due jobs, each settled once, and one index read per org swept.
    """

    def __init__(self, orgs: list[str], interval: float = DUE_BUCKET_SECONDS) -> None:
        self.orgs = list(orgs)
        self.interval = interval
        self._next_full = -math.inf
        self._earliest: dict[str, float] = {}  # per org; absent: unknown, so swept

    def run_in(self, tx: Tx, now: float, org_id: str, *, exact: bool = False) -> None:
        """Sweep inside the caller's transaction (the operation's own: no extra round trip)."""
        if exact:
            self._settle(tx, org_id, now)
        if now >= self._next_full:
            self._next_full = now + self.interval
            orgs = self.orgs
        else:
            orgs = [o for o in self.orgs if self._earliest.get(o, -math.inf) <= now]
        for org in orgs:
            if not (exact and org == org_id):
                self._settle(tx, org, now)

    @contextlib.contextmanager
    def watching(self, org_id: str) -> Iterator[None]:
        """Around an operation that may start jobs, after `run_in(..., exact=True)` for its
        org: learn the org's earliest deadline when it succeeds (a refusal leaves no job).

        The exact sweep before the operation left the org's earliest remaining deadline in
        `_earliest` (or `now` when more were due); the operation's job starts append to the
        last page of their duration's queue, so the earliest deadline now is the smaller of
        that and theirs, known without reading the index back (the org's index document, a
        head and a page per queue: three to six reads and JSON copies per job start,
        measured in a regenerate's profile)."""
        _STARTS.deadlines = started = []
        try:
            yield
        finally:
            _STARTS.deadlines = None
        self._earliest[org_id] = min([self._earliest.get(org_id, -math.inf), *started])

    def _settle(self, tx: Tx, org_id: str, now: float) -> None:
        more, earliest = settle_due(tx, org_id, now)
        self._earliest[org_id] = now if more else (math.inf if earliest is None else earliest)


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
