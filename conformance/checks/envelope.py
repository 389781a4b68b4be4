"""Judges of what the whole run saw: D5 on every error, the spec on every response.

They run after every other check, over the observations all clients recorded, so a breach is
reported once under its own rule (D5, SCHEMA) instead of failing whichever check met it.
"""

from __future__ import annotations

import uuid

from layers_kit.conformance.context import Ctx
from layers_kit.conformance.failures import Violation
from layers_kit.conformance.registry import check


@check("D5", "Every error: the envelope, JSON, and requestId equal to X-Request-Id",
       judge=True)
def d5_error_envelope(ctx: Ctx) -> None:
    """Sends three errors of its own (getContent with no key: 401; getContent of a missing
    container: 404; regenerateContent with the malformed JSON body `{not json`: 422), then, last in
    the run, judges every response that any check of the run received.

    Fails when a response has no X-Request-Id, or an error (4xx, 5xx) is not JSON, is not
    `{"error": {"code", "message", "requestId"}}`, has a requestId other than its X-Request-Id, or
    carries a code with a status the contract does not document for it; the report counts the
    breaches and shows the first.
    """
    # Errors of its own, so that D5 is judged even when the other checks met none.
    ctx.client(None).get(f"/v1/content/cnt_{uuid.uuid4()}")  # 401
    ctx.api.get(f"/v1/content/cnt_{uuid.uuid4()}")  # 404
    ctx.api.post(f"/v1/content/cnt_{uuid.uuid4()}/regenerate",
                 content=b"{not json", headers={"Content-Type": "application/json"})  # 422
    obs = ctx.observations
    if obs.d5_breaches:
        first = obs.d5_breaches[0]
        kinds = sorted({b.message.split(":")[0] for b in obs.d5_breaches})
        raise Violation(f"{len(obs.d5_breaches)} of {obs.errors_seen} error responses break "
                        f"D5 (first seen by {first.check}): {first.message}",
                        expected="{error: {code, message, requestId}} as JSON, requestId = "
                                 "X-Request-Id",
                        received="; ".join(kinds)[:500], exchange=first.exchange)


@check("SCHEMA", "Every response a check received matches openapi.yaml (openapi-core)",
       judge=True)
def schema_responses(ctx: Ctx) -> None:
    """Sends nothing of its own: last in the run, it reads every response the run's checks
    received, each validated against openapi.yaml with openapi-core when it arrived (a 304 is not
    checked).

    Fails when any response is not one the contract documents for its operation (status, headers or
    body); the report counts them and shows the first.
    """
    obs = ctx.observations
    if obs.schema_breaches:
        first = obs.schema_breaches[0]
        raise Violation(f"{len(obs.schema_breaches)} response(s) do not match openapi.yaml "
                        f"(first seen by {first.check})",
                        expected="a response documented by the contract",
                        received=first.message, exchange=first.exchange)
