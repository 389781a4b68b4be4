"""The broken variants: name -> (the rule the kit must name, a patch of the mock)."""

from __future__ import annotations

from collections.abc import Callable

from mock.domain import (
    assets,
    effects,
    errors,
    idempotency,
    jobs,
    moderation,
    operations,
    review,
    tenancy,
)
from mock.domain.clock import iso


def replay_new_job() -> None:
    """The replay runs the operation again (a new job) instead of replaying."""
    idempotency.claim_in = lambda *a, **k: None


def brief_replaced() -> None:
    """The brief is replaced by the given fields instead of merged."""
    original = effects.on_completed

    def completed(tx, job, at):
        pending = job["pending"].get("brief")
        if pending is not None:
            for cid in job["containerIds"]:
                c = tenancy.get_container(tx, job["orgId"], cid)
                c["brief"] = {"topic": None, "angle": None, "cta": None,
                              "valuePropositions": []}
                tenancy.put_container(tx, c)
        return original(tx, job, at)

    effects.on_completed = completed


def value_propositions_appended() -> None:
    """valuePropositions is appended to instead of replaced."""
    original = effects.on_completed

    def completed(tx, job, at):
        brief = job["pending"].get("brief") or {}
        if "valuePropositions" in brief:
            c = tenancy.get_container(tx, job["orgId"], job["containerIds"][0])
            brief["valuePropositions"] = c["brief"]["valuePropositions"] + \
                brief["valuePropositions"]
        return original(tx, job, at)

    effects.on_completed = completed


def approval_not_reset() -> None:
    """Approval is not reset to pending under review_all for a regeneration."""
    original = review.needs_review

    def needs(tx, project):
        return False if project["policy"]["policy"] == "review_all" else original(tx, project)

    effects.review.needs_review = needs


def old_assets_vanish() -> None:
    """Superseded assets are deleted instead of kept readable."""

    def supersede(tx, org_id, asset_ids, at, retention=None):
        for aid in asset_ids:
            tx.delete(tenancy.ASSET, f"{org_id}/{aid}")

    effects.assets.supersede = supersede


def other_org_forbidden() -> None:
    """Another org's container answers 403 instead of 404 (it leaks existence)."""

    def container(tx, ctx, raw_id):
        from mock.domain import ids

        cid = ids.canonical_container_id(raw_id)
        c = None
        for org in ("org_00000000-0000-4000-8000-00000000000a",
                    "org_00000000-0000-4000-8000-00000000000b",
                    "org_00000000-0000-4000-8000-00000000000c"):
            c = c or (tenancy.get_container(tx, org, cid) if cid else None)
        if c is None:
            raise errors.NotFound("No container with this id exists in your organization.")
        if c["orgId"] != ctx.principal.org_id:
            raise errors.ForbiddenScope("content:read")
        return operations._settle(tx, ctx, c)

    operations._container = container


def no_location_url() -> None:
    """The 202 envelope lacks locationUrl."""

    def accepted(job):
        body = jobs.accepted(job)
        location = body.pop("locationUrl")
        return operations.Reply(202, body, {"Location": location})

    operations._accepted = accepted


def progress_goes_backwards() -> None:
    """progress counts down while the job runs."""
    jobs.progress = lambda job: 1.0 if job["status"] == "completed" else \
        round(1 - job["stageIndex"] / 5, 4) if job["stageIndex"] else 0.9


def terminal_job_changes() -> None:
    """A completed job's updatedAt moves on every read."""
    import time

    original = jobs.view

    def view(job):
        out = original(job)
        if job["status"] in jobs.TERMINAL:
            out["updatedAt"] = iso(time.time())
        return out

    jobs.view = view


def wrong_billing_code() -> None:
    """Credits short answers 409 CONFLICT instead of 402 BILLING_EXHAUSTED."""
    from mock.domain import billing

    def reserve(tx, org_id, cost):
        org = tx.get("org", org_id)
        if org["available"] < cost:
            raise errors.Conflict("Not enough credits.")
        org["available"] -= cost
        org["reserved"] += cost
        tx.put("org", org_id, org)

    billing.reserve = reserve
    operations.billing.reserve = reserve


def caption_kept() -> None:
    """The caption is not replaced by a regeneration."""
    original = effects.captions.write
    effects.captions.write = lambda brief, earlier, gen: earlier[-1] if earlier else \
        original(brief, earlier, gen)


def container_id_changes() -> None:
    """The finished job reports a new container id."""
    import uuid

    original = effects.on_completed

    def completed(tx, job, at):
        result = original(tx, job, at)
        return {**result, "containerId": f"cnt_{uuid.uuid4()}"}

    effects.on_completed = completed


def preserve_assets_ignored() -> None:
    """preserveAssets is ignored: the assets are replaced anyway."""
    original = effects.on_completed

    def completed(tx, job, at):
        job["pending"]["preserveAssets"] = False
        return original(tx, job, at)

    effects.on_completed = completed


def scheduled_caption_updated() -> None:
    """A regeneration rewrites the caption of the container's scheduled posts."""
    original = effects.on_completed

    def completed(tx, job, at):
        result = original(tx, job, at)
        for cid in job["containerIds"]:
            c = tenancy.get_container(tx, job["orgId"], cid)
            for pid in c["scheduledPostIds"]:
                post = tx.get("post", pid)
                post["caption"] = c["caption"]
                tx.put("post", pid, post)
        return result

    effects.on_completed = completed


def busy_container_allowed() -> None:
    """A second regenerate of a busy container starts another job."""
    original = operations.regenerate_content

    def regenerate(tx, ctx, container_id, body):
        from mock.domain import ids

        c = tenancy.get_container(tx, ctx.principal.org_id,
                                  ids.canonical_container_id(container_id) or "")
        if c is not None and c["currentJobId"]:
            c["currentJobId"] = None
            tenancy.put_container(tx, c)
        return original(tx, ctx, container_id, body)

    operations.regenerate_content = regenerate  # the registry finds it by name at start


def cancel_applies_changes() -> None:
    """Canceling a job still applies its new brief and caption."""

    def canceled(tx, job, at):
        job_copy = {**job, "pending": job["pending"]}
        effects.on_completed(tx, job_copy, at)

    effects.on_canceled = canceled
    jobs.effects.on_canceled = canceled


def never_304() -> None:
    """If-None-Match is ignored: never a 304."""
    original = operations.get_job
    operations.get_job = lambda tx, ctx, job_id, if_none_match: original(tx, ctx, job_id, None)


def scopes_ignored() -> None:
    """A read-only key may regenerate: scopes are not enforced."""
    from mock.domain import auth

    auth.require_scopes = lambda principal, scopes: None
    import mock.web.auth as web_auth  # imports it by name

    web_auth.require_scopes = auth.require_scopes


def stages_out_of_order() -> None:
    """The stages are reported in another order than documented."""
    jobs.STAGES = ("queued", "generating_visuals", "planning", "assembling", "finalizing")


def moderation_off() -> None:
    """The safety check lets everything through."""
    moderation.check_brief = lambda brief, terms: None
    operations.moderation.check_brief = moderation.check_brief


def request_id_mismatch() -> None:
    """Error bodies carry a requestId other than the X-Request-Id header."""
    original = errors.envelope

    def envelope(err, request_id):
        out = original(err, request_id)
        out["error"]["requestId"] = "req_01HXZ9G7KMV2QX8Y1S5RJW3B7T"
        return out

    import mock.web.responses as responses

    responses.envelope = envelope


# name -> (the rule the kit must report as failed, the patch)
VARIANTS: dict[str, tuple[str, Callable[[], None]]] = {
    "replay_new_job": ("D6", replay_new_job),
    "brief_replaced": ("R5", brief_replaced),
    "value_propositions_appended": ("R5", value_propositions_appended),
    "approval_not_reset": ("R8", approval_not_reset),
    "old_assets_vanish": ("R7", old_assets_vanish),
    "other_org_forbidden": ("R12", other_org_forbidden),
    "no_location_url": ("R1", no_location_url),
    "progress_goes_backwards": ("D7", progress_goes_backwards),
    "terminal_job_changes": ("D7", terminal_job_changes),
    "wrong_billing_code": ("R12", wrong_billing_code),
    "caption_kept": ("R4", caption_kept),
    "container_id_changes": ("R2", container_id_changes),
    "preserve_assets_ignored": ("R6", preserve_assets_ignored),
    "scheduled_caption_updated": ("R9", scheduled_caption_updated),
    "busy_container_allowed": ("R10", busy_container_allowed),
    "cancel_applies_changes": ("R11", cancel_applies_changes),
    "never_304": ("D7", never_304),
    "scopes_ignored": ("D8", scopes_ignored),
    "stages_out_of_order": ("D7", stages_out_of_order),
    "moderation_off": ("R12", moderation_off),
    "request_id_mismatch": ("R12", request_id_mismatch),
}

# The kit can judge stage order and progress only from stages its polls land in. Under the
# suite's load (three broken targets at once on two cores) a poll can take longer than a 0.1-s
# stage, so these variants run with stages that last long enough to be seen, as real ones do.
MOCK_ARGS: dict[str, tuple[str, ...]] = {
    "stages_out_of_order": ("--stage-seconds", "0.4"),
    "progress_goes_backwards": ("--stage-seconds", "0.4"),
}

__all__ = ["MOCK_ARGS", "VARIANTS", "assets"]
