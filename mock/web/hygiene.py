"""Requests refused before anything reads them: ambiguous paths and headers, oversized headers.

- A trailing slash (`/v1/content/x/`) answered 307 with a `Location` built from the `Host`
  header and no envelope; `%2F` in an id was decoded into a separator, so
  `POST /v1/content/cnt_x%2Fregenerate` ran a regenerate. A strict API answers both 404
  `NOT_FOUND` in the D5 envelope: no path means two things.
- A duplicated `X-Api-Key` (or `Authorization`) silently took the last value; which key a
  proxy or a client library sent is then a guess. 401 `UNAUTHENTICATED`, saying why.
- The header section is bounded: more than `MAX_HEADERS` headers or `MAX_HEADER_BYTES` bytes
  answers 431 (RFC 6585) in the D5 envelope with code `VALIDATION_FAILED` (D5 has no code of
  its own for it). The HTTP parser has read those bytes already; see the README for what
  bounds the parser itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from layers_kit.mock.domain.errors import ApiError, NotFound, Unauthenticated
from layers_kit.mock.web.responses import error

MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
_SINGLE = (b"x-api-key", b"authorization")
_EXEMPT = ("/docs",)  # Swagger UI's own files live under /docs/


def check(scope: Scope) -> None:
    """Raise the D5 error a request this layer refuses gets; None when it may go on."""
    headers = scope.get("headers") or []
    size = 0
    seen: list[bytes] = []
    for k, v in headers:  # one pass: the hot path's every request
        size += len(k) + len(v) + 4
        name = k.lower()
        if name in _SINGLE:
            seen.append(name)
    if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        raise ApiError(f"The request's header section is too large (at most {MAX_HEADERS} "
                       f"headers and {MAX_HEADER_BYTES // 1024} KiB).",
                       code="VALIDATION_FAILED", status=431)
    if len(seen) > 1:
        for name in _SINGLE:
            if seen.count(name) > 1:
                raise Unauthenticated(f"Send one {name.decode().title()} header, not several.")
    path: str = scope.get("path", "")
    if path.startswith(_EXEMPT) or path == "/":
        return
    raw = scope.get("raw_path") or path.encode()
    if b"%2f" in raw.lower() or b"%5c" in raw.lower():
        raise NotFound("No such route: an encoded slash is not part of any id.")
    if path.endswith("/"):
        raise NotFound("No such route: paths take no trailing slash.")


class HygieneMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check(scope)
            except ApiError as err:
                await error(err)(scope, receive, send)
                return
        await self.app(scope, receive, send)
