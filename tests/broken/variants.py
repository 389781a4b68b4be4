"""The variants that prove the kit: name -> a patch of the mock, the rules the kit must fail
(exactly those, and nothing else), and the checks that must end inconclusive.

Patches replace one domain function with one of the same signature, or wrap the app at the
HTTP level (tests/broken/asgi.py); a variant never makes the mock answer 5xx.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from layers_kit.mock.domain import (
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
from layers_kit.mock.domain.clock import iso


def replay_new_job() -> None:
    """The replay runs the operation again (a new job) instead of replaying."""
    idempotency.lookup_in = lambda *a, **k: None


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
    """Superseded assets are deleted instead of kept readable (the real signature, so
    completion still works and only R7 breaks)."""

    def supersede(tx, org_id, asset_ids, at_iso, retention=None):
        for aid in asset_ids:
            tx.delete(tenancy.ASSET, f"{org_id}/{aid}")

    assets.supersede = supersede


def other_org_forbidden() -> None:
    """Another org's container answers 403 instead of 404 (it leaks existence)."""

    def container(tx, ctx, raw_id):
        from layers_kit.mock.domain import ids

        cid = ids.canonical_container_id(raw_id)
        c = None
        for org in ("org_00000000-0000-4000-8000-00000000000a",
                    "org_00000000-0000-4000-8000-00000000000b",
                    "org_00000000-0000-4000-8000-00000000000c",
                    "org_00000000-0000-4000-8000-00000000000d"):  # the suite's credits org
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
    from layers_kit.mock.domain import billing

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
        from layers_kit.mock.domain import ids

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
    from layers_kit.mock.domain import auth

    auth.require_scopes = lambda principal, scopes: None
    import layers_kit.mock.web.auth as web_auth  # imports it by name

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

    import layers_kit.mock.web.responses as responses

    responses.envelope = envelope


def constant_etag() -> None:
    """getJob's ETag never changes while the job moves (a 304 still works for ended jobs)."""
    jobs.etag = lambda view_doc: '"same-for-ever"'


def replay_rerendered() -> None:
    """A replay re-renders the job's current state instead of repeating the first bytes."""
    import orjson

    original = idempotency.lookup_in

    def lookup_in(tx, *args, **kwargs):
        stored = original(tx, *args, **kwargs)
        if stored is None or stored.status != 202:
            return stored
        first = orjson.loads(stored.body)
        job = tx.get("job", first.get("jobId", ""))
        if job is None:
            return stored
        view = jobs.view(job)
        now = {**first, **{k: view[k] for k in ("status", "stage", "progress")
                           if k in view and view[k] != first.get(k)}}
        return idempotency.Stored(stored.status, stored.headers, orjson.dumps(now).decode())

    idempotency.lookup_in = lookup_in


def rate_limited() -> None:
    """Correct, but enforces the standard tier per key (429 RATE_LIMITED with Retry-After)."""
    from tests.broken.asgi import RateLimiter, wrap_app

    wrap_app(lambda app: RateLimiter(app, minute=RATE_MINUTE))


def extra_fields() -> None:
    """Correct, but every response object carries an extra field the schema allows."""
    from tests.broken.asgi import ExtraFields, wrap_app

    wrap_app(ExtraFields)


def stages_too_fast() -> None:
    """Correct, but a job's five stages pass faster than any poll (see MOCK_ARGS)."""
    original = jobs.start

    def start(tx, **kw):
        # --stage-seconds stops at 1 ms a stage (jobs.start), a 5-ms job that a fast kit's
        # second request (R10), cancel (R11) or poll can still catch running; 10 us a stage
        # ends every job before any loopback round trip, whatever the kit's speed.
        job = original(tx, **kw)
        job["stageSeconds"] = TOO_FAST_STAGE_SECONDS
        tx.put("job", job["jobId"], job)
        jobs._index(tx, job)  # the deadline index follows the new deadline
        return job

    jobs.start = start


TOO_FAST_STAGE_SECONDS = 0.00001


def approve_not_required_accepted() -> None:
    """Approving a container whose approval is not_required answers 200 (the contract: 409
    CONFLICT)."""
    original = operations.approve_content

    def approve(tx, ctx, container_id, body):
        c = operations._container(tx, ctx, container_id)
        if c["approvalStatus"] == "not_required":
            return operations.Reply(200, {"id": c["id"], "approvalStatus": "approved",
                                          "approvedAt": iso(ctx.now),
                                          "approvedBy": ctx.principal.key_id,
                                          "note": body.get("note")})
        return original(tx, ctx, container_id, body)

    operations.approve_content = approve


def schedule_pending_accepted() -> None:
    """Scheduling a container whose approval is pending is accepted (the contract: 409
    APPROVAL_REQUIRED)."""
    from layers_kit.mock.domain import ids

    def schedule(tx, ctx, container_id, body):  # operations.schedule_content without the check
        c = operations._container(tx, ctx, container_id)
        if c.get("generation", 0) == 0 or c["caption"] is None:
            raise errors.Conflict("This container has no completed generation to schedule.")
        post = {"id": ids.uuid_id("sp"), "orgId": c["orgId"], "containerId": c["id"],
                "status": "scheduled", "scheduledFor": body["scheduledFor"],
                "caption": c["caption"], "createdAt": iso(ctx.now)}
        tx.put("post", post["id"], post)
        c["scheduledPostIds"].append(post["id"])
        tenancy.put_container(tx, c)
        return operations.Reply(201, operations.post_view(post))

    operations.schedule_content = schedule


def cancel_in_finalizing_accepted() -> None:
    """A cancel while the job is finalizing is accepted and cancels it (the contract: 409
    CONFLICT JOB_CANCEL_UNAVAILABLE)."""
    jobs.UNCANCELABLE_STAGE = len(jobs.STAGES)


def review_first_n_ignored() -> None:
    """The review_first_n policy is ignored: no generation is put to review under it."""
    original = review.needs_review

    def needs(tx, project):
        if project["policy"]["policy"] == "review_first_n":
            return False
        return original(tx, project)

    effects.review.needs_review = needs


def bearer_wins() -> None:
    """Authorization: Bearer wins over X-Api-Key when both come (the contract: X-Api-Key)."""
    from layers_kit.mock.domain import auth

    original = auth.Keyring.authenticate

    def authenticate(self, api_key, authorization):
        if authorization is not None:
            return original(self, None, authorization)
        return original(self, api_key, authorization)

    auth.Keyring.authenticate = authenticate


def generate_accepts_invalid() -> None:
    """generateContent accepts bodies that break its schema: variantCount 6 (taken as 5) and
    unknown fields (dropped) are accepted."""
    from tests.broken.asgi import BodyRewriter, wrap_app

    known = {"id", "format", "variantCount", "brief", "references"}

    def rewrite(body):
        if not isinstance(body, dict):
            return body
        out = {k: v for k, v in body.items() if k in known}
        if isinstance(out.get("variantCount"), int) and out["variantCount"] > 5:
            out["variantCount"] = 5
        if isinstance(out.get("brief"), dict):
            brief_fields = {"topic", "angle", "cta", "valuePropositions"}
            out["brief"] = {k: v for k, v in out["brief"].items() if k in brief_fields}
        return out

    wrap_app(lambda app: BodyRewriter(
        app, lambda method, path: method == "POST" and path.startswith("/v1/projects/")
        and path.endswith("/content"), rewrite))


def policy_accepts_invalid() -> None:
    """updateReviewPolicy accepts firstN with any policy (dropped) and clamps it to 1-50."""
    from tests.broken.asgi import BodyRewriter, wrap_app

    def rewrite(body):
        if not isinstance(body, dict):
            return body
        out = dict(body)
        if out.get("policy") != "review_first_n":
            out.pop("firstN", None)
        elif isinstance(out.get("firstN"), int):
            out["firstN"] = min(50, max(1, out["firstN"]))
        return out

    wrap_app(lambda app: BodyRewriter(
        app, lambda method, path: method == "PATCH" and path.endswith(
            "/content-review-policy"), rewrite))


def cancel_keeps_credits() -> None:
    """A canceled job keeps its credits spent instead of releasing them."""
    from layers_kit.mock.domain import billing

    original = effects.on_canceled

    def canceled(tx, job, at):
        original(tx, {**job, "cost": 0}, at)  # the content is restored, nothing released
        billing.settle(tx, job["orgId"], job["cost"])

    effects.on_canceled = canceled
    jobs.effects.on_canceled = canceled


# The standard tier's minute, scaled so the suite never waits a real one (see asgi.py).
RATE_MINUTE = 8.0
FAST = ("--stage-seconds", "0.15")


@dataclass(frozen=True)
class Variant:
    patch: Callable[[], None]
    fails: frozenset[str]  # the rules the kit must fail: exactly these
    inconclusive: frozenset[str] = frozenset()  # checks that must end inconclusive
    mock_args: tuple[str, ...] = FAST
    # what its run proves needs one key (its 429s), not the extra keys the others spread over
    one_key: bool = False
    # it breaks a rule of the checks that change the review policy: it also runs as a run
    # without --policy-project-id goes (those checks alone at the end, one key)
    also_alone: bool = False

    @property
    def doc(self) -> str:
        return (self.patch.__doc__ or "").strip().splitlines()[0]


def _v(patch, *rules: str, inconclusive: tuple[str, ...] = (),
       mock_args: tuple[str, ...] = FAST, one_key: bool = False,
       also_alone: bool = False) -> Variant:
    return Variant(patch, frozenset(rules), frozenset(inconclusive), mock_args, one_key,
                   also_alone)


# Stage checks judge only stages their polls land in: under the suite's load a poll can take
# longer than a 0.1-s stage, so the variants run with 0.15-s stages, and the stage-timing
# variants with stages that can be seen.
SEEN = ("--stage-seconds", "0.4")

VARIANTS: dict[str, Variant] = {
    "replay_new_job": _v(replay_new_job, "D6"),
    "brief_replaced": _v(brief_replaced, "R5"),
    "value_propositions_appended": _v(value_propositions_appended, "R5"),
    # Nothing ever waits for review, so the checks that need a pending container cannot
    # set one up: inconclusive, not failed (R8 names the defect).
    "approval_not_reset": _v(approval_not_reset, "R8",
                             inconclusive=("d16_schedule_pending",
                                           "d5_invalid_bodies_approval_and_policy")),
    "old_assets_vanish": _v(old_assets_vanish, "R7"),
    # The leak is one defect; R12 (regenerate) and D8 (reads, cancel) both forbid it.
    "other_org_forbidden": _v(other_org_forbidden, "R12", "D8"),
    # The envelope breaks the schema too (locationUrl is required).
    "no_location_url": _v(no_location_url, "R1", "SCHEMA"),
    "progress_goes_backwards": _v(progress_goes_backwards, "D7", mock_args=SEEN),
    "terminal_job_changes": _v(terminal_job_changes, "D7"),
    # The credits check reads balances from 402s: with none it cannot read them.
    "wrong_billing_code": _v(wrong_billing_code, "R12",
                             inconclusive=("r11_cancel_releases_credits",)),
    # A kept caption breaks R4, and R6 (preserveAssets still regenerates the caption).
    "caption_kept": _v(caption_kept, "R4", "R6"),
    "container_id_changes": _v(container_id_changes, "R2"),
    "preserve_assets_ignored": _v(preserve_assets_ignored, "R6"),
    "scheduled_caption_updated": _v(scheduled_caption_updated, "R9"),
    "busy_container_allowed": _v(busy_container_allowed, "R10"),
    "cancel_applies_changes": _v(cancel_applies_changes, "R11"),
    "never_304": _v(never_304, "D7"),
    "scopes_ignored": _v(scopes_ignored, "D8"),
    "stages_out_of_order": _v(stages_out_of_order, "D7", mock_args=SEEN),
    "moderation_off": _v(moderation_off, "R12"),
    "request_id_mismatch": _v(request_id_mismatch, "D5"),
    "constant_etag": _v(constant_etag, "D7"),
    # A re-rendered 202 of a finished job also breaks the 202 envelope's schema.
    "replay_rerendered": _v(replay_rerendered, "D6", "SCHEMA"),
    "rate_limited": _v(rate_limited, mock_args=("--stage-seconds", "0.6"), one_key=True),
    "extra_fields": _v(extra_fields),
    "stages_too_fast": _v(stages_too_fast, mock_args=("--stage-seconds", "0.001"),
                          inconclusive=("d7_stage_order", "d7_progress_monotonic",
                                        "d7_etag_tracks_changes", "r10_busy_conflict",
                                        "r11_cancel_keeps_content", "d7_cancel_in_finalizing",
                                        "r11_cancel_releases_credits")),
    # The promises the kit once let pass (each a sentence of openapi.yaml).
    "approve_not_required_accepted": _v(approve_not_required_accepted, "D16"),
    "schedule_pending_accepted": _v(schedule_pending_accepted, "D16", also_alone=True),
    "cancel_in_finalizing_accepted": _v(cancel_in_finalizing_accepted, "D7"),
    "review_first_n_ignored": _v(review_first_n_ignored, "R8", also_alone=True),
    "bearer_wins": _v(bearer_wins, "D8"),
    "generate_accepts_invalid": _v(generate_accepts_invalid, "D5"),
    "policy_accepts_invalid": _v(policy_accepts_invalid, "D5", also_alone=True),
    "cancel_keeps_credits": _v(cancel_keeps_credits, "R11"),
}

__all__ = ["VARIANTS", "Variant"]
