"""Body checks before schema validation: size (413), media type (415), UTF-8 and JSON syntax (422).

Connexion turns a non-UTF-8 body into a 500 and a body without Content-Type into bytes; both
are refused here with the right D5 code. The body is read and parsed once: the bytes are
replayed to Connexion's validation, the parsed value waits in the request state for the handler.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock.domain.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from mock.web import state

MAX_BODY = 1024 * 1024  # D5: 1 MiB
_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime, *params = [p.strip().lower() for p in content_type.split(";")]
    if not (mime == "application/json" or (mime.startswith("application/")
                                           and mime.endswith("+json"))):
        return False
    for p in params:
        name, _, value = p.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


class BodyGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            raise PayloadTooLarge()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise PayloadTooLarge()
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        parsed = None
        if body:
            if not _is_json(headers.get("content-type")):
                raise UnsupportedMediaType()
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed([{"path": "body", "message": "must be UTF-8 encoded"}],
                                       "The request body is not UTF-8.") from None
            try:
                # The one parse of the body: the dispatcher hands this to the handler, and
                # the same parser decides what is JSON (orjson refuses lone surrogates, NaN).
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise ValidationFailed(
                    [{"path": "body", "message": f"is not valid JSON: {exc.msg} at line "
                                                 f"{exc.lineno} column {exc.colno}"}],
                    "The request body is not valid JSON.") from None
        state.current().body = parsed

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
