"""D16: approving and scheduling, driven into the states the contract names; and the review
policy helpers the checks that change it share (they run alone and restore it).

Every post the kit schedules is dated at least a year ahead (`future_date`): a `scheduledFor`
in the past means "publish as soon as possible", which on a real staging server publishes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from layers_kit.conformance.client import new_key
from layers_kit.conformance.context import Ctx
from layers_kit.conformance.failures import Inconclusive, expect
from layers_kit.conformance.probes import policy_path
from layers_kit.conformance.registry import check

FUTURE_DAYS = 400  # every post the kit schedules is dated at least this far ahead


def future_date(now: dt.datetime | None = None) -> str:
    """A `scheduledFor` FUTURE_DAYS ahead, as the contract writes times."""
    at = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(days=FUTURE_DAYS)
    return at.strftime("%Y-%m-%dT09:00:00.000Z")


def _code(r) -> str | None:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def set_policy(ctx: Ctx, policy: dict[str, Any], project_id: str | None = None) -> None:
    """updateReviewPolicy, which must answer 200 (a refusal for scope: inconclusive)."""
    r = ctx.api.request("PATCH", policy_path(project_id or ctx.project),
                        json=policy)
    if r.status_code != 200:
        ctx.refused(r, "changing the project's review policy")
    expect(r.status_code == 200, "updateReviewPolicy answers 200", expected=200,
           received=f"{r.status_code} {r.text[:200]}", response=r)


def pending_container(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    """A container generated while the project's policy is review_all (the caller set it), and
    its state: pending approval, else the check is inconclusive."""
    cid = ctx.generate()
    state = ctx.api.content(cid)
    if state.get("approvalStatus") != "pending":
        raise Inconclusive(f"a container generated under review_all is "
                           f"{state.get('approvalStatus')!r}, not 'pending'",
                           needed="a container pending approval")
    return cid, state


@contextmanager
def policy(ctx: Ctx, wanted: dict[str, Any]) -> Iterator[None]:
    """Run a block under `wanted` as the check's project's review policy (--project-id's, or
    --policy-project-id's), then restore the policy read first (the checks using it are
    `exclusive`: they run alone, or one after another in --policy-project-id)."""
    project = ctx.project
    r = ctx.api.get(policy_path(project))
    expect(r.status_code == 200, "getReviewPolicy answers 200", expected=200,
           received=r.status_code, response=r)
    original = {k: v for k, v in r.json().items() if k in ("policy", "firstN")}
    try:
        set_policy(ctx, wanted)
        yield
    finally:
        set_policy(ctx, original)


def approval_of(ctx: Ctx, cid: str) -> str | None:
    return ctx.api.content(cid).get("approvalStatus")


@check("D16", "Approving a container that needs no approval: 409 CONFLICT",
       needs=("project",), exclusive=True)
def d16_approve_not_required(ctx: Ctx) -> None:
    """Sets the project's review policy (--project-id's, or
    --policy-project-id's) to auto_approve, generates a container and, once it
    completed with approvalStatus `not_required`, sends approveContent (`{"note":
    "conformance"}`) for it; then reads it back and restores the policy it read. Runs alone.

    Fails when the approve is not answered 409 with error.code CONFLICT, or when the container's
    approvalStatus is no longer `not_required` afterwards. Inconclusive when the completed
    container is not `not_required` under auto_approve (nothing to approve-refuse).
    """
    with policy(ctx, {"policy": "auto_approve"}):
        cid = ctx.generate()
        before = approval_of(ctx, cid)
        if before != "not_required":
            raise Inconclusive(f"a container generated under auto_approve is {before!r}, "
                               "not 'not_required'",
                               needed="a container whose approval is not_required")
        r = ctx.api.post(f"/v1/content/{cid}/approve", json={"note": "conformance"},
                         headers={"Idempotency-Key": new_key()})
        expect(r.status_code == 409 and _code(r) == "CONFLICT",
               "approving a container that needs no approval answers 409 CONFLICT",
               expected="409 CONFLICT", received=f"{r.status_code} {r.text[:200]}",
               response=r)
        after = approval_of(ctx, cid)
        expect(after == "not_required", "the refused approve changed nothing",
               expected="not_required", received=after)


@check("D16", "Scheduling a container pending approval: 409 APPROVAL_REQUIRED",
       needs=("project",), exclusive=True)
def d16_schedule_pending(ctx: Ctx) -> None:
    """Sets the project's review policy (--project-id's, or
    --policy-project-id's) to review_all, generates a container and, once it
    completed with approvalStatus `pending`, sends scheduleContent for it with a scheduledFor
    400 days ahead (new Idempotency-Key); then reads it back and restores the policy it read.
    Runs alone.

    Fails when the schedule is not answered 409 with error.code APPROVAL_REQUIRED, or when the
    container lists a scheduled post afterwards. Inconclusive when the completed container is
    not `pending` under review_all.
    """
    with policy(ctx, {"policy": "review_all"}):
        cid, before = pending_container(ctx)
        r = ctx.api.post(f"/v1/content/{cid}/schedule", json={"scheduledFor": future_date()},
                         headers={"Idempotency-Key": new_key()})
        expect(r.status_code == 409 and _code(r) == "APPROVAL_REQUIRED",
               "scheduling a container pending approval answers 409 APPROVAL_REQUIRED",
               expected="409 APPROVAL_REQUIRED", received=f"{r.status_code} {r.text[:200]}",
               response=r)
        after = ctx.api.content(cid)
        expect(after.get("scheduledPostIds") == before.get("scheduledPostIds"),
               "the refused schedule left no post", expected=before.get("scheduledPostIds"),
               received=after.get("scheduledPostIds"))
