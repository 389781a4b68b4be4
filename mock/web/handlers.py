"""The one handler: every operation is the same few steps, and what differs is registry data.

Given a routed, authenticated and validated request, it applies the `Prefer` controls, then
lets `idempotency.respond` claim the key, run the operation's domain function in one store
transaction and keep or release the answer (D6). No rule lives here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from layers_kit.mock.domain import idempotency
from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.domain.idempotency import Stored
from layers_kit.mock.store.base import Tx
from layers_kit.mock.web import prefer, responses
from layers_kit.mock.web.registry import IDEMPOTENCY_HEADER
from layers_kit.mock.web.state import RequestState
from layers_kit.mock.web.validation import check_response


async def handle(st: RequestState, kwargs: dict[str, Any]) -> Response:
    op = st.operation
    assert op is not None and st.principal is not None and st.scope is not None
    service = st.service
    prefs = prefer.parse([v.decode("latin-1") for k, v in st.scope.get("headers", [])
                          if k.lower() == b"prefer"])
    forced = prefer.forced_response(op.operation_id, prefs, st.request_id, set(op.success))
    if isinstance(forced, ApiError):
        raise forced
    if forced is not None:
        return responses.from_stored(forced)

    claim = None
    key = kwargs.pop(IDEMPOTENCY_HEADER.replace("-", "_"), None)
    if key is not None and op.idempotent:
        claim = idempotency.Claim(st.principal.key_id, key, idempotency.fingerprint(
            op.method, st.scope["path"], kwargs.get("body")))
    checking = bool(op.responses)

    def execute(tx: Tx) -> Stored:
        reply = service.call(tx, op.operation_id, op.domain, st.principal,
                             fail_job=prefs.job_fail, **kwargs)
        if checking:
            check_response(st, reply.status, reply.body)
        return responses.stored(reply, st.request_id)

    def on_error(err: ApiError) -> Stored:
        return responses.error_stored(err, st.request_id)

    async def wait() -> None:
        await asyncio.sleep(prefs.latency_ms / 1000)

    answer, replayed = await idempotency.respond(
        service.store, claim, service.idempotency_ttl, execute=execute, on_error=on_error,
        before=wait if prefs.latency_ms else None)
    if replayed:
        st.replayed = True
        # The replay is the first response: its request id is the one the client sees.
        st.request_id = answer.headers.get("X-Request-Id", st.request_id)
    return responses.from_stored(answer, replayed=replayed)
