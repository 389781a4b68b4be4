"""Every error Connexion or Starlette raises, answered in the D5 envelope.

Connexion now serves only the docs page and /openapi.json (the API's requests never reach it),
but whatever it raises still gets the D5 envelope, rendered by responses.py: its defaults are
problem+json with schema dumps.
"""

from __future__ import annotations

import logging

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.web import state
from layers_kit.mock.web.responses import error_stored

log = logging.getLogger("layers.mock")

_BY_STATUS = {
    400: ("VALIDATION_FAILED", "The request breaks the API contract."),
    401: ("UNAUTHENTICATED", None),
    403: ("FORBIDDEN_SCOPE", None),
    404: ("NOT_FOUND", "No such resource or route."),
    405: ("METHOD_NOT_ALLOWED", "This path does not accept that method."),
    413: ("PAYLOAD_TOO_LARGE", None),
    415: ("UNSUPPORTED_MEDIA_TYPE", None),
    422: ("VALIDATION_FAILED", "The request breaks the API contract."),
}


def _respond(err: ApiError) -> ConnexionResponse:
    stored = error_stored(err, state.current().request_id)
    headers = {k: v for k, v in stored.headers.items() if k != "Content-Type"}
    return ConnexionResponse(status_code=stored.status, body=stored.body.encode(),
                             mimetype="application/json", headers=headers)


async def on_api_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, ApiError)
    return _respond(exc)


async def on_http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Connexion's problems (400 validation, 415) and Starlette's (404, 405)."""
    status = getattr(exc, "status", None) or getattr(exc, "status_code", 500)
    code, message = _BY_STATUS.get(status, ("INTERNAL", None))
    if status >= 500:
        log.error("server error: %r", exc)
    err = ApiError(message, code=code)
    if code == "VALIDATION_FAILED":
        detail = str(getattr(exc, "detail", "") or "")[:200]
        err.details = {"issues": [{"path": "request", "message": detail or message}]}
    return _respond(err)


async def on_unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.exception("unhandled error", exc_info=exc)
    return _respond(ApiError(code="INTERNAL"))


HANDLERS = [
    (ApiError, on_api_error),
    (ProblemException, on_http_error),
    (HTTPException, on_http_error),
    (Exception, on_unexpected),
]
