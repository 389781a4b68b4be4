"""D5: a body that breaks the contract is refused with 422 VALIDATION_FAILED and never carried
out, for every operation that takes a body.

`CASES` names, per operation, bodies that break its request schema in one way each (a value
out of range, an unknown field, a wrong type, a missing required field, a value outside an
enum). A test (tests/test_promises.py) fails when the contract gains an operation with a body
that `CASES` lacks. `scheduleContent` is only ever sent to a container pending approval, and
with a `scheduledFor` a year ahead wherever the break is elsewhere: a server that skipped
validation still could not publish anything.
"""

from __future__ import annotations

from typing import Any

from layers_kit.conformance.checks.approval import future_date, pending_container, policy
from layers_kit.conformance.client import new_key
from layers_kit.conformance.context import GENERATE_BODY, Ctx
from layers_kit.conformance.failures import expect
from layers_kit.conformance.probes import policy_path
from layers_kit.conformance.registry import check

FUTURE = "<a year ahead>"  # replaced by future_date() when sent


def _brief(**changes: Any) -> dict[str, Any]:
    return {**GENERATE_BODY, **changes}


# operationId -> (what breaks, body) for each case.
CASES: dict[str, list[tuple[str, Any]]] = {
    "regenerateContent": [
        ("an unknown top-level field", {"colour": "red"}),
        ("an unknown brief field", {"brief": {"topic": "Fine", "colour": "red"}}),
        ("brief of the wrong type", {"brief": "a string"}),
        ("preserveAssets of the wrong type", {"preserveAssets": "sometimes"}),
        ("references.sourcePostIds of the wrong type",
         {"references": {"sourcePostIds": "post_1"}}),
        ("a JSON array as the body", []),
    ],
    "generateContent": [
        ("variantCount 6 (maximum 5)", _brief(variantCount=6)),
        ("variantCount 0 (minimum 1)", _brief(variantCount=0)),
        ("variantCount of the wrong type", _brief(variantCount="2")),
        ("an unknown top-level field", _brief(colour="red")),
        ("an unknown brief field", _brief(brief={"topic": "Fine", "colour": "red"})),
        ("format outside its enum", _brief(format="gif")),
        ("the required brief missing", {"format": "auto", "variantCount": 1}),
        ("brief.topic missing", _brief(brief={"angle": "No topic"})),
        ("brief.topic of the wrong type", _brief(brief={"topic": 42})),
    ],
    "approveContent": [
        ("note of the wrong type", {"note": 42}),
        ("note over 1024 characters", {"note": "x" * 1025}),
        ("an unknown field", {"note": "Fine", "colour": "red"}),
    ],
    "scheduleContent": [
        ("an unknown field", {"scheduledFor": FUTURE, "colour": "red"}),
        ("scheduledFor not a date-time", {"scheduledFor": "next year"}),
        ("scheduledFor of the wrong type", {"scheduledFor": 1893456000}),
        ("the required scheduledFor missing", {}),
    ],
    "updateReviewPolicy": [
        ("review_first_n without firstN", {"policy": "review_first_n"}),
        ("firstN with review_all", {"policy": "review_all", "firstN": 3}),
        ("firstN 51 (maximum 50)", {"policy": "review_first_n", "firstN": 51}),
        ("firstN 0 (minimum 1)", {"policy": "review_first_n", "firstN": 0}),
        ("policy outside its enum", {"policy": "sometimes"}),
        ("an unknown field", {"policy": "auto_approve", "colour": "red"}),
    ],
}


def _dated(body: Any) -> Any:
    if isinstance(body, dict) and body.get("scheduledFor") == FUTURE:
        return {**body, "scheduledFor": future_date()}
    return body


def _refused(ctx: Ctx, method: str, path: str, operation: str) -> None:
    """Send each case of the operation; each must be 422 VALIDATION_FAILED."""
    for what, body in CASES[operation]:
        r = ctx.api.request(method, path, json=_dated(body),
                            headers={"Idempotency-Key": new_key()})
        code = None
        try:
            code = r.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            pass
        expect(r.status_code == 422 and code == "VALIDATION_FAILED",
               f"{operation} with {what} answers 422 VALIDATION_FAILED (never carried out)",
               expected="422 VALIDATION_FAILED", received=f"{r.status_code} {r.text[:200]}",
               response=r)


@check("D5", "Bodies that break the schema of a job start: 422 VALIDATION_FAILED",
       needs=("containers",))
def d5_invalid_bodies_job_starts(ctx: Ctx) -> None:
    """Sends regenerateContent to a container and generateContent to its project with each body of
    `CASES` (conformance/checks/bodies.py), one break each (e.g. variantCount 6, an unknown field,
    a wrong type, brief.topic missing), every one with a new Idempotency-Key; then reads the
    container.

    Fails when any is answered other than 422 with error.code VALIDATION_FAILED (a 202 started a
    job from a body the contract refuses), or when the container has a job running afterwards.
    """
    cid = ctx.container()
    project = ctx.api.content(cid)["projectId"]
    _refused(ctx, "POST", f"/v1/content/{cid}/regenerate", "regenerateContent")
    _refused(ctx, "POST", f"/v1/projects/{project}/content", "generateContent")
    running = ctx.api.content(cid).get("currentJobId")
    expect(running is None, "no job was started", expected=None, received=running)


@check("D5", "Bodies that break approve, schedule and policy schemas: 422 VALIDATION_FAILED",
       needs=("project",), exclusive=True)
def d5_invalid_bodies_approval_and_policy(ctx: Ctx) -> None:
    """Sets the project's review policy (--project-id's, or
    --policy-project-id's) to review_all and generates a container (pending
    approval); sends approveContent and scheduleContent for it and updateReviewPolicy for the
    project with each body of `CASES` (conformance/checks/bodies.py), e.g. a note over 1024
    characters, scheduledFor not a date-time, firstN with review_all, every one with a new
    Idempotency-Key (scheduledFor, where valid, a year ahead); reads the container and the
    policy; restores the policy it read. Runs alone.

    Fails when any is answered other than 422 with error.code VALIDATION_FAILED, or when the
    container's approval or scheduled posts or the project's policy changed. Inconclusive when
    the container is not pending under review_all.
    """
    project = ctx.project
    with policy(ctx, {"policy": "review_all"}):
        cid, before = pending_container(ctx)
        _refused(ctx, "POST", f"/v1/content/{cid}/approve", "approveContent")
        _refused(ctx, "POST", f"/v1/content/{cid}/schedule", "scheduleContent")
        _refused(ctx, "PATCH", policy_path(project), "updateReviewPolicy")
        after = ctx.api.content(cid)
        for field in ("approvalStatus", "scheduledPostIds"):
            expect(after.get(field) == before.get(field), f"the container's {field} did not "
                   "change", expected=before.get(field), received=after.get(field))
        now = ctx.api.get(policy_path(project)).json()
        expect(now.get("policy") == "review_all" and "firstN" not in now,
               "the project's policy did not change", expected="review_all",
               received={k: now.get(k) for k in ("policy", "firstN")})
