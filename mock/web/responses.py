"""Domain answers and errors as HTTP responses: the one place that knows D5 on the wire."""

from __future__ import annotations

from starlette.responses import Response

from mock.domain.errors import ApiError
from mock.domain.idempotency import Stored
from mock.domain.service import error_response
from mock.web import state


def from_stored(stored: Stored, *, replayed: bool = False) -> Response:
    headers = dict(stored.headers)
    if replayed:
        headers["Idempotent-Replayed"] = "true"  # D6
    media = headers.pop("Content-Type", None)
    return Response(stored.body.encode("utf-8") if stored.body else b"",
                    status_code=stored.status, headers=headers, media_type=media)


def error(err: ApiError) -> Response:
    return from_stored(error_response(err, state.current().request_id))
