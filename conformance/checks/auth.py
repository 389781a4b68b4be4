"""D8: keys, scopes and tenancy."""

from __future__ import annotations

import uuid

from layers_kit.conformance.context import Ctx
from layers_kit.conformance.failures import expect
from layers_kit.conformance.registry import check


def _code(r) -> str | None:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@check("D8", "No key, an unknown key or a malformed Authorization: 401 UNAUTHENTICATED")
def d8_unauthenticated(ctx: Ctx) -> None:
    """Sends getContent for a random container id (`GET /v1/content/cnt_<uuid>`) three times:
    with no key, with the unknown key `lp_test_conformance_not_a_key` in X-Api-Key, and with no
    key but `Authorization: Basic x`.

    Fails when any of the three is answered other than 401 with error.code UNAUTHENTICATED.
    """
    path = f"/v1/content/cnt_{uuid.uuid4()}"
    attempts = {
        "no key": ctx.client(None).get(path),
        "unknown key": ctx.client("lp_test_conformance_not_a_key").get(path),
        "malformed Authorization": ctx.client(None).get(path,
                                                        headers={"Authorization": "Basic x"}),
    }
    for what, r in attempts.items():
        expect(r.status_code == 401 and _code(r) == "UNAUTHENTICATED",
               f"{what} answers 401 UNAUTHENTICATED", expected="401 UNAUTHENTICATED",
               received=f"{r.status_code} {r.text[:200]}")


@check("D8", "The key works as Authorization: Bearer too")
def d8_bearer(ctx: Ctx) -> None:
    """Sends getContent for a random missing container id with --api-key as `Authorization: Bearer
    <key>` instead of X-Api-Key.

    Fails when the answer is not 404 (a 401 means the bearer form was not accepted).
    """
    r = ctx.client(ctx.target.api_key, bearer=True).get(f"/v1/content/cnt_{uuid.uuid4()}")
    expect(r.status_code == 404, "a bearer key is authenticated (404 for a missing container)",
           expected=404, received=f"{r.status_code} {r.text[:200]}")


@check("D8", "A key without the scope: 403 FORBIDDEN_SCOPE naming the scope",
       needs=("readonly", "containers"))
def d8_forbidden_scope(ctx: Ctx) -> None:
    """Sends regenerateContent with the body `{}` for a container using --readonly-key, then reads
    the container back with --api-key.

    Fails when the answer is not 403 FORBIDDEN_SCOPE, when error.details.requiredScope is not
    `content:write`, or when the container's currentJobId is set afterwards (a job started).
    """
    cid = ctx.container()
    r = ctx.client(ctx.target.readonly_key, role="readonly").regenerate(cid, {})
    expect(r.status_code == 403 and _code(r) == "FORBIDDEN_SCOPE",
           "regenerate with a read-only key answers 403 FORBIDDEN_SCOPE",
           expected="403 FORBIDDEN_SCOPE", received=f"{r.status_code} {r.text[:200]}")
    scope = (r.json()["error"].get("details") or {}).get("requiredScope")
    expect(scope == "content:write", "details.requiredScope names the missing scope",
           expected="content:write", received=scope)
    expect(ctx.api.content(cid)["currentJobId"] is None, "nothing was started",
           received=ctx.api.content(cid)["currentJobId"])


@check("D8", "Another org's resources are 404 with no existence leak",
       needs=("other_org", "containers"))
def d8_tenancy(ctx: Ctx) -> None:
    """Starts a regeneration (`{}`) of a container with --api-key; then, with --other-org-key,
    sends getContent, getJob and cancelJob on that container and job, and each on a missing
    container or job id; then waits for the job to end.

    Fails when an operation on the other org's resource is answered other than 404 NOT_FOUND, when
    its error code, message or details differ from the missing resource's 404, or when the job does
    not end completed (the other org's cancel touched it). Inconclusive when both answers of an
    operation are 403 FORBIDDEN_SCOPE (the other key's scopes stop it before tenancy).
    """
    cid = ctx.container()
    other = ctx.client(ctx.target.other_org_key, role="other")
    envelope = ctx.started(ctx.api.regenerate(cid, {}))
    job_id = envelope["jobId"]
    probes = [
        ("getContent", f"/v1/content/{cid}", f"/v1/content/cnt_{uuid.uuid4()}", "GET"),
        ("getJob", f"/v1/jobs/{job_id}", "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T", "GET"),
        ("cancelJob", f"/v1/jobs/{job_id}/cancel", "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T/cancel",
         "POST"),
    ]
    for name, theirs, missing, method in probes:
        a = other.request(method, theirs)
        b = other.request(method, missing)
        if a.status_code == b.status_code == 403:  # the key's scopes stop it before tenancy
            ctx.refused(b, f"{name} with --other-org-key", other)
        expect(a.status_code == 404 and _code(a) == "NOT_FOUND",
               f"{name} on another org's resource answers 404 NOT_FOUND (never 403)",
               expected="404 NOT_FOUND", received=f"{a.status_code} {a.text[:200]}")
        strip = lambda r: {k: r.json()["error"].get(k)  # noqa: E731 - D5's fields but the id
                           for k in ("code", "message", "details")}
        expect(strip(a) == strip(b), f"{name}: the 404 is identical to a missing resource's",
               expected=strip(b), received=strip(a))
    final = ctx.wait(ctx.location(envelope))[-1]
    expect(final["status"] == "completed", "the other org's cancel did not touch the job",
           expected="completed", received=final["status"])


@check("D8", "X-Api-Key wins over Authorization: Bearer when both come")
def d8_api_key_wins(ctx: Ctx) -> None:
    """Sends getContent for a random missing container id twice with both headers: --api-key as
    X-Api-Key with `Authorization: Bearer lp_test_conformance_not_a_key`, then the unknown key
    as X-Api-Key with --api-key as `Authorization: Bearer`.

    Fails when the first is not answered 404 (X-Api-Key, the valid one, is used) or the second
    not 401 UNAUTHENTICATED (X-Api-Key, the unknown one, is used: the Bearer key must not win).
    """
    path = f"/v1/content/cnt_{uuid.uuid4()}"
    bad = "lp_test_conformance_not_a_key"
    anon = ctx.client(None)
    valid_header = anon.get(path, headers={"X-Api-Key": ctx.target.api_key,
                                           "Authorization": f"Bearer {bad}"})
    expect(valid_header.status_code == 404,
           "with a valid X-Api-Key and an unknown Bearer key, X-Api-Key is used (404 for a "
           "missing container)", expected="404 NOT_FOUND",
           received=f"{valid_header.status_code} {valid_header.text[:200]}",
           response=valid_header)
    valid_bearer = anon.get(path, headers={"X-Api-Key": bad,
                                           "Authorization": f"Bearer {ctx.target.api_key}"})
    expect(valid_bearer.status_code == 401 and _code(valid_bearer) == "UNAUTHENTICATED",
           "with an unknown X-Api-Key and a valid Bearer key, X-Api-Key is used (401)",
           expected="401 UNAUTHENTICATED",
           received=f"{valid_bearer.status_code} {valid_bearer.text[:200]}",
           response=valid_bearer)
