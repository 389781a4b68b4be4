"""The one handler: every operation is the same few steps, and what differs is registry data.

Given a routed, authenticated and validated request, it applies the `Prefer` controls, then
lets `idempotency.respond` claim the key, run the operation's domain function in one store
transaction and keep or release the answer (D6). No rule lives here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from layers_kit.mock.domain import idempotency, ids
from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.domain.idempotency import Stored
from layers_kit.mock.store.base import Tx
from layers_kit.mock.web import prefer, responses
from layers_kit.mock.web.registry import IDEMPOTENCY_HEADER
from layers_kit.mock.web.state import RequestState
from layers_kit.mock.web.validation import check_response

_CANONICAL = {"containerId": ids.canonical_container_id,
              "projectId": lambda raw: ids.canonical_prefixed(raw, "prj"),
              "scheduledPostId": lambda raw: ids.canonical_prefixed(raw, "sp")}


def canonical_path(template: str, params: dict[str, str], raw_path: str) -> str:
    """The request's path with each id in its canonical form (D3: `cnt_<uuid>` and the bare
    uuid, in any case, name one container), so that D6's fingerprint sees one request where
    the client wrote the id two ways (they were IDEMPOTENCY_CONFLICT)."""
    try:
        return template.format(**{name: (_CANONICAL[name](value) or value)
                                  if name in _CANONICAL else value
                                  for name, value in params.items()})
    except (KeyError, IndexError, ValueError):
        return raw_path


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
            op.method, canonical_path(op.path, st.path_params, st.scope["path"]),
            kwargs.get("body")))
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
        before=wait if prefs.latency_ms else None,
        limit=service.config.idempotency_max_keys)
    if replayed:
        st.replayed = True
        # The replay is the first response: its request id is the one the client sees.
        st.request_id = answer.headers.get("X-Request-Id", st.request_id)
    return responses.from_stored(answer, replayed=replayed)
