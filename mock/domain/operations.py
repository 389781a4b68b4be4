"""The API's operations (D2) as functions of a store transaction.

Each takes the transaction, a `Ctx` (who asks, when, with which settings) and the validated
parameters, enforces its rules, and returns a `Reply`. The web layer only translates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from layers_kit.mock.domain import (
    assets,
    billing,
    fifo,
    ids,
    jobs,
    moderation,
    review,
    tenancy,
)
from layers_kit.mock.domain.auth import Principal
from layers_kit.mock.domain.clock import iso
from layers_kit.mock.domain.errors import ApprovalRequired, Conflict, NotFound
from layers_kit.mock.store.base import Tx


@dataclass(frozen=True)
class Settings:
    """What the rules need of the configuration (`mock.config.Config` holds the defaults)."""

    stage_seconds: float
    # How long ended jobs and superseded assets are kept (the storage lifecycle the reference
    # page mentions); keeps a long-running mock's memory bounded.
    retention_seconds: float
    moderation_terms: tuple[str, ...] = moderation.DEFAULT_TERMS
    # Containers created through the API kept per org (--max-containers); past it the oldest
    # created that run no job are forgotten first (fixtures' containers are never).
    max_containers: int = 5_000


@dataclass(frozen=True)
class Ctx:
    principal: Principal
    now: float
    settings: Settings
    fail_job: bool = False  # Prefer: job=fail


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


# Operations that read an org's balance: the service ends due jobs exactly before them
# (jobs.settle_due), so credits of a job that ended unobserved are already settled.
READS_BALANCE = frozenset({"regenerateContent", "generateContent"})
MAX_SCHEDULED_POSTS = 100  # per container; one more is 409 CONFLICT
CREATED = "created"  # the paged list of the containers an org created through the API


# ---- lookups: another org's resource is exactly as missing as a missing one (D8, R12) -------

def _container(tx: Tx, ctx: Ctx, raw_id: str) -> dict[str, Any]:
    cid = ids.canonical_container_id(raw_id)
    # Keyed per org (tenancy.py): another org's container is not even read.
    c = tenancy.get_container(tx, ctx.principal.org_id, cid) if cid else None
    if c is None:
        raise NotFound("No container with this id exists in your organization.")
    return _settle(tx, ctx, c)


def _settle(tx: Tx, ctx: Ctx, c: dict[str, Any]) -> dict[str, Any]:
    """Jobs advance when read (D7): bring the container's running job up to the clock."""
    if c["currentJobId"]:
        job = tx.get("job", c["currentJobId"])
        if job is not None and job["status"] == "running":
            jobs.advance(tx, job, ctx.now)
            return tenancy.get_container(tx, c["orgId"], c["id"])
    return c


def _project(tx: Tx, ctx: Ctx, raw_id: str) -> dict[str, Any]:
    p = tx.get("project", ids.canonical_prefixed(raw_id, "prj"))
    if p is None or p["orgId"] != ctx.principal.org_id:
        raise NotFound("No project with this id exists in your organization.")
    return p


def _job(tx: Tx, ctx: Ctx, job_id: str) -> dict[str, Any]:
    job = tx.get("job", job_id)
    if job is None or job["orgId"] != ctx.principal.org_id:
        raise NotFound("No job with this id exists in your organization.")
    return jobs.advance(tx, job, ctx.now)


def container_view(tx: Tx, c: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c["id"], "projectId": c["projectId"], "status": c["status"],
        "approvalStatus": c["approvalStatus"], "format": c["format"], "brief": c["brief"],
        "references": c["references"], "caption": c["caption"],
        "assets": assets.load(tx, c["orgId"], c["assetIds"]),
        "scheduledPostIds": c["scheduledPostIds"],
        "currentJobId": c["currentJobId"], "lastError": c["lastError"],
        "createdAt": c["createdAt"], "updatedAt": c["updatedAt"],
        "completedAt": c["completedAt"],
    }


def _accepted(job: dict[str, Any]) -> Reply:
    body = jobs.accepted(job)
    return Reply(202, body, {"Location": body["locationUrl"]})  # R1


# ---- operations ------------------------------------------------------------------------------

def regenerate_content(tx: Tx, ctx: Ctx, container_id: str, body: dict[str, Any]) -> Reply:
    """D4 R1-R12: start a content_regenerate job for the container."""
    c = _container(tx, ctx, container_id)  # R12 NOT_FOUND, also across orgs
    moderation.check_brief(body.get("brief"), ctx.settings.moderation_terms)  # R12
    if c["currentJobId"]:  # R10
        raise Conflict("A generation job is already running for this container.",
                       {"jobId": c["currentJobId"]})
    preserve = bool(body.get("preserveAssets", False))
    if preserve and not c["assetIds"]:
        raise Conflict("This container has no assets to preserve; regenerate without "
                       "preserveAssets.")
    cost = billing.regenerate_cost(preserve)
    billing.reserve(tx, c["orgId"], cost)  # R12 BILLING_EXHAUSTED
    job = jobs.start(
        tx, job_id=ids.job_id(), kind="content_regenerate", org_id=c["orgId"],
        project_id=c["projectId"], container_ids=[c["id"]], now=ctx.now,
        stage_seconds=ctx.settings.stage_seconds, fail=ctx.fail_job, cost=cost,
        retention=ctx.settings.retention_seconds,
        pending={"brief": body.get("brief"), "references": body.get("references"),
                 "preserveAssets": preserve},
    )
    c["currentJobId"] = job["jobId"]
    c["status"] = "generating"  # D7: previous assets and caption stay until completion
    c["updatedAt"] = iso(ctx.now)
    tenancy.put_container(tx, c)
    return _accepted(job)


def generate_content(tx: Tx, ctx: Ctx, project_id: str, body: dict[str, Any]) -> Reply:
    project = _project(tx, ctx, project_id)
    moderation.check_brief(body.get("brief"), ctx.settings.moderation_terms)
    fmt = body.get("format", "auto")
    count = int(body.get("variantCount", 1))
    first = f"cnt_{body['id'].lower()}" if body.get("id") else None
    # Only the caller's own org is looked at: another org's id is as free as an unused one.
    if first and tenancy.get_container(tx, project["orgId"], first) is not None:
        raise Conflict("A container with this id already exists.")
    cost = billing.generate_cost(fmt, count)
    billing.reserve(tx, project["orgId"], cost)
    container_ids = [first or f"cnt_{uuid.uuid4()}"] + [
        f"cnt_{uuid.uuid4()}" for _ in range(count - 1)]
    job_id = ids.job_id()
    brief = {"topic": None, "angle": None, "cta": None, "valuePropositions": [],
             **body["brief"]}
    refs = {"sourcePostIds": [], "assetIds": [], **(body.get("references") or {})}
    # The project document is not touched: its cost must not grow with its containers.
    for cid in container_ids:
        tenancy.put_container(tx, new_container(
            cid, project, fmt, brief, refs, iso(ctx.now), status="generating", job_id=job_id))
    job = jobs.start(
        tx, job_id=job_id, kind="content_generate", org_id=project["orgId"],
        project_id=project["id"], container_ids=container_ids, now=ctx.now,
        stage_seconds=ctx.settings.stage_seconds, fail=ctx.fail_job, cost=cost, pending={},
        retention=ctx.settings.retention_seconds,
    )
    for cid in container_ids:
        _track_created(tx, project["orgId"], cid, ctx.settings.max_containers)
    return _accepted(job)


def _track_created(tx: Tx, org_id: str, cid: str, limit: int) -> None:
    """List a container the API created, in order; past `limit` of them, forget the oldest
    page (32) of those that run no job (a running one goes to the end of the list). Each
    container remembers its page (`slot`): an id created again since keeps its newer one."""
    def track(c: dict[str, Any]) -> None:
        h = fifo.push(tx, CREATED, org_id, c["id"])
        c["slot"] = h["last"]
        tenancy.put_container(tx, c)

    c = tenancy.get_container(tx, org_id, cid)
    track(c)
    h = fifo.head(tx, CREATED, org_id)
    if fifo.pages(h) <= max(1, limit // fifo.PAGE) + 1:
        return
    first = h["first"]
    for old in fifo.drop_first(tx, CREATED, org_id, h):
        c = tenancy.get_container(tx, org_id, old)
        if c is None or c.get("slot") != first:
            continue
        if c["currentJobId"]:
            track(c)
        else:
            forget_container(tx, c)


def forget_container(tx: Tx, c: dict[str, Any]) -> None:
    """Remove a container with its current assets and scheduled posts (superseded assets
    expire with their retention); its project's pending count is kept in step."""
    review.set_approval(tx, c, "not_required")
    for aid in c["assetIds"]:
        tenancy.delete_asset(tx, c["orgId"], aid)
    for pid in c["scheduledPostIds"]:
        tx.delete("post", pid)
    tenancy.delete_container(tx, c["orgId"], c["id"])


def new_container(cid: str, project: dict[str, Any], fmt: str, brief: dict[str, Any],
                  refs: dict[str, Any], at: str, *, status: str,
                  job_id: str | None) -> dict[str, Any]:
    return {
        "id": cid, "orgId": project["orgId"], "projectId": project["id"], "status": status,
        "approvalStatus": "not_required", "format": fmt, "brief": brief, "references": refs,
        "caption": None, "captions": [], "generation": 0, "assetIds": [],
        "scheduledPostIds": [], "currentJobId": job_id, "lastError": None, "createdAt": at,
        "updatedAt": at, "completedAt": None,
    }


def get_content(tx: Tx, ctx: Ctx, container_id: str) -> Reply:
    return Reply(200, container_view(tx, _container(tx, ctx, container_id)))


def get_content_asset(tx: Tx, ctx: Ctx, container_id: str, asset_id: str) -> Reply:
    c = _container(tx, ctx, container_id)
    asset = tenancy.get_asset(tx, c["orgId"], asset_id)
    if asset is None or asset["containerId"] != c["id"]:
        raise NotFound("No asset with this id belongs to this container.")
    return Reply(200, asset)  # R7: superseded assets too


def approve_content(tx: Tx, ctx: Ctx, container_id: str, body: dict[str, Any]) -> Reply:
    c = _container(tx, ctx, container_id)
    if c["approvalStatus"] == "not_required":
        raise Conflict("This container does not need approval.")
    if c["status"] != "completed" and c.get("generation", 0) == 0:
        raise Conflict("This container has no completed generation to approve yet.")
    if c["approvalStatus"] != "approved":
        review.set_approval(tx, c, "approved")
        c["approvedAt"] = iso(ctx.now)
        c["approvedBy"] = ctx.principal.key_id
        c["approvalNote"] = body.get("note")
        c["updatedAt"] = iso(ctx.now)
        tenancy.put_container(tx, c)
    return Reply(200, {"id": c["id"], "approvalStatus": "approved",
                       "approvedAt": c["approvedAt"], "approvedBy": c["approvedBy"],
                       "note": c.get("approvalNote")})


def schedule_content(tx: Tx, ctx: Ctx, container_id: str, body: dict[str, Any]) -> Reply:
    c = _container(tx, ctx, container_id)
    if c.get("generation", 0) == 0 or c["caption"] is None:
        raise Conflict("This container has no completed generation to schedule.")
    if c["approvalStatus"] in ("pending", "rejected"):
        raise ApprovalRequired()
    if len(c["scheduledPostIds"]) >= MAX_SCHEDULED_POSTS:
        # Bounded: the container lists its posts, and getContent answers that list (after
        # 23,000 posts it answered 983 KB, and scheduling ran at half speed).
        raise Conflict(f"This container has {MAX_SCHEDULED_POSTS} scheduled posts, the most "
                       "the mock keeps per container; schedule another container.")
    post = {"id": ids.uuid_id("sp"), "orgId": c["orgId"], "containerId": c["id"],
            "status": "scheduled", "scheduledFor": body["scheduledFor"],
            "caption": c["caption"], "createdAt": iso(ctx.now)}
    tx.put("post", post["id"], post)
    c["scheduledPostIds"].append(post["id"])
    tenancy.put_container(tx, c)
    return Reply(201, post_view(post))


def post_view(post: dict[str, Any]) -> dict[str, Any]:
    return {k: post[k] for k in ("id", "containerId", "status", "scheduledFor", "caption",
                                 "createdAt")}


def get_scheduled_post(tx: Tx, ctx: Ctx, scheduled_post_id: str) -> Reply:
    post = tx.get("post", ids.canonical_prefixed(scheduled_post_id, "sp"))
    if post is None or post["orgId"] != ctx.principal.org_id:
        raise NotFound("No scheduled post with this id exists in your organization.")
    return Reply(200, post_view(post))


def get_job(tx: Tx, ctx: Ctx, job_id: str, if_none_match: str | None) -> Reply:
    view = jobs.view(_job(tx, ctx, job_id))
    tag = jobs.etag(view)
    if if_none_match and tag in [t.strip() for t in if_none_match.split(",")]:
        return Reply(304, None, {"ETag": tag})
    return Reply(200, view, {"ETag": tag})


def cancel_job(tx: Tx, ctx: Ctx, job_id: str) -> Reply:
    job = _job(tx, ctx, job_id)
    if job["status"] in jobs.TERMINAL:
        reason = {"completed": "ALREADY_COMPLETED", "failed": "ALREADY_FAILED",
                  "canceled": "ALREADY_CANCELED"}[job["status"]]
        return Reply(200, {"jobId": job["jobId"], "accepted": False, "reason": reason})
    if job["stageIndex"] >= jobs.UNCANCELABLE_STAGE:
        raise Conflict("The job is finalizing and can no longer be canceled.",
                       {"subcode": "JOB_CANCEL_UNAVAILABLE"})
    jobs.cancel(tx, job, ctx.now)
    return Reply(202, {"jobId": job["jobId"], "accepted": True})


def get_review_policy(tx: Tx, ctx: Ctx, project_id: str) -> Reply:
    return Reply(200, review.view(tx, _project(tx, ctx, project_id)))


def update_review_policy(tx: Tx, ctx: Ctx, project_id: str, body: dict[str, Any]) -> Reply:
    project = _project(tx, ctx, project_id)
    review.update(tx, project, body, iso(ctx.now))
    return Reply(200, review.view(tx, tx.get("project", project["id"])))
