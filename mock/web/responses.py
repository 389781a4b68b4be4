"""Answers on the wire: the one place that renders a domain reply, and the D5 envelope, as HTTP.

Every error of the mock, whoever meets it (the API pipeline, the control API, Connexion's own
pages, the last-resort handler), becomes a response through `error` here; every reply of an
operation through `stored`. Both are first made into a `Stored` (status, headers, JSON text) so
that what idempotency keeps is byte for byte what the client got.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from layers_kit.mock.domain.errors import ApiError, envelope
from layers_kit.mock.domain.idempotency import Stored
from layers_kit.mock.domain.operations import Reply

JSON = "application/json"


def dumps(body: Any) -> str:
    """The JSON text of a response: compact, UTF-8, the same bytes for the same body."""
    return orjson.dumps(body).decode()


def stored(reply: Reply, request_id: str) -> Stored:
    """A domain reply with the framing of the wire: its request id and content type."""
    headers = {"X-Request-Id": request_id, **reply.headers}
    if reply.body is None:
        return Stored(reply.status, headers, "")
    headers["Content-Type"] = JSON
    return Stored(reply.status, headers, dumps(reply.body))


def error_stored(err: ApiError, request_id: str) -> Stored:
    """D5: `{"error": {code, message, requestId, details?}}`, X-Request-Id equal to requestId."""
    headers = {"Content-Type": JSON, "X-Request-Id": request_id, **err.headers}
    return Stored(err.status, headers, dumps(envelope(err, request_id)))


def from_stored(answer: Stored, *, replayed: bool = False) -> Response:
    headers = dict(answer.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"  # D6
    media = headers.pop("Content-Type", None)
    return Response(answer.body.encode("utf-8") if answer.body else b"",
                    status_code=answer.status, headers=headers, media_type=media)


def error(err: ApiError, request_id: str | None = None) -> Response:
    """The D5 response of an error (the current request's id unless given)."""
    if request_id is None:
        from layers_kit.mock.web import state

        request_id = state.current().request_id
    return from_stored(error_stored(err, request_id))
