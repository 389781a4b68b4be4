"""Jobs on a clock (D7): stages in order, monotonic progress, sticky terminal states.

A job's state is a function of its start time and the clock; nothing runs in the background.
Whoever reads a job or its container first after a stage boundary moves it forward (`advance`),
inside the store transaction, so the completion effects happen exactly once.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from mock.domain import effects
from mock.domain.clock import iso
from mock.store.base import Tx

STAGES = ("queued", "planning", "generating_visuals", "assembling", "finalizing")
TERMINAL = frozenset({"completed", "failed", "canceled"})
# Where a job asked to fail (Prefer: job=fail) fails.
FAIL_AT_STAGE = STAGES.index("generating_visuals")
UNCANCELABLE_STAGE = STAGES.index("finalizing")


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
    return job


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
