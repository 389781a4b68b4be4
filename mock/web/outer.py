"""The outermost layer: request id, last-resort 500, common headers, the request journal.

Whatever escapes every other layer becomes the D5 INTERNAL envelope here, never a stack trace.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers_kit.mock.domain.clock import iso
from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.domain.service import MockService
from layers_kit.mock.store.base import StoreUnavailable
from layers_kit.mock.web import state
from layers_kit.mock.web.responses import error

log = logging.getLogger("layers.mock")
MAX_JOURNALED = 512  # characters of a journaled path or query string at most
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature", "sig",
                 "credential", "session", "cookie")


def _masked_query(raw: str) -> str:
    """A query string for the journal: secret-looking parameters masked (by name, or an API
    key's `lp_` value), and at most MAX_JOURNALED characters (one call returned 30 MB)."""
    if not raw:
        return raw
    parts = []
    for part in raw[: MAX_JOURNALED * 4].split("&"):
        name, eq, value = part.partition("=")
        lowered = unquote_plus(name).lower()
        if eq and (any(w in lowered for w in _SECRET_WORDS) or
                   unquote_plus(value).startswith("lp_")):
            value = "***"
        parts.append(f"{name}{eq}{value}")
    return _bounded("&".join(parts))


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_JOURNALED else text[:MAX_JOURNALED] + "…"


class DropConnection(Exception):
    """Raised after the response has started, so the server cuts the connection."""


def _is_drop(exc: BaseException | None) -> bool:
    """A DropConnection, perhaps wrapped by a framework layer on the way out."""
    for _ in range(10):
        if exc is None:
            return False
        if isinstance(exc, DropConnection):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class OuterMiddleware:
    def __init__(self, app: ASGIApp, service: MockService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        st = state.begin(self.service, scope)
        status: list[int] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                # The journal entry is written before the client can see the answer, so a
                # client that reads the journal next finds it there.
                if not st.dropped:
                    await self._journal(scope, st, message["status"])
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"x-request-id" not in names:
                    headers.append((b"x-request-id", st.request_id.encode()))
                if st.rate_class and b"x-ratelimit-endpoint-class" not in names:
                    headers.append((b"x-ratelimit-endpoint-class", st.rate_class.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ApiError as err:  # a layer refused the request (a fault, say): its D5 answer
            if status:
                raise
            await error(err, st.request_id)(scope, receive, send_with_headers)
        except Exception as exc:
            if _is_drop(exc):  # an injected fault cut the connection: no answer was given
                st.dropped = True
                raise DropConnection() from None  # bare, so the server's log filter knows it
            if status:
                raise
            log.exception("unhandled error in request %s", st.request_id)
            await error(ApiError(code="INTERNAL"), st.request_id)(scope, receive,
                                                                  send_with_headers)
        finally:
            if st.dropped:  # an injected fault cut the connection: no answer was given
                await self._journal(scope, st, 0, dropped=True)
            elif not status:  # no answer at all (the client went away first)
                await self._journal(scope, st, 0)

    async def _journal(self, scope: Scope, st: state.RequestState, status: int,
                       dropped: bool = False) -> None:
        path = scope.get("path", "")
        if path.startswith("/__mock/"):
            return
        try:
            await self.service.store.record({
                "requestId": st.request_id, "at": iso(time.time()),
                "method": scope.get("method"), "path": _bounded(path),
                "query": _masked_query(scope.get("query_string", b"").decode("latin-1")),
                "operationId": st.operation_id, "status": status,
                "key": st.principal.masked if st.principal else None,
                "replayed": st.replayed, **({"dropped": True} if dropped else {}),
                "durationMs": round((time.perf_counter() - st.started) * 1000, 2),
            })
        except StoreUnavailable:  # a stalled store: the answer goes out without its entry
            pass
        except Exception:  # the journal must never break a response
            log.exception("journal write failed")
