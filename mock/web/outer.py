"""The outermost layer: request id, last-resort 500, common headers, the request journal.

Whatever escapes every other layer becomes the D5 INTERNAL envelope here, never a stack trace.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import unquote_plus

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers_kit.mock.domain import idempotency, ids
from layers_kit.mock.domain.clock import iso
from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.domain.service import MockService
from layers_kit.mock.store.base import StoreUnavailable
from layers_kit.mock.web import state
from layers_kit.mock.web.handlers import canonical_path
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


_JOB_FACTS = frozenset({"getJob", "regenerateContent", "generateContent"})


def client_facts(st: state.RequestState, status: int, headers: list[tuple[bytes, bytes]],
                 body: bytes) -> dict[str, Any]:
    """What the client rules (C1-C6, client_report.py) read of one call: who, its key and
    fingerprint, If-None-Match; the answer's ETag, Retry-After, error code and job. Recorded
    with --client-report only (the JSON of getJob's and job starts' answers is parsed)."""
    answer = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
    op = st.operation_id
    client = st.headers.get("x-client-id") or (st.principal.masked if st.principal else None)
    facts: dict[str, Any] = {
        "t": time.time(), "client": _bounded(client) if client else None,
        "idempotencyKey": (st.headers.get("idempotency-key") or "")[:255] or None,
        "ifNoneMatch": "if-none-match" in st.headers, "etag": answer.get("etag"),
        "rateClass": st.rate_class, "containerId": None, "jobId": None, "jobStatus": None,
        "errorCode": None, "retryAfter": None, "fingerprint": None}
    if st.operation is not None and st.scope is not None and st.body_read:
        facts["fingerprint"] = idempotency.fingerprint(
            st.operation.method, canonical_path(st.operation.path, st.path_params,
                                                st.scope["path"]), st.body)
    try:
        facts["retryAfter"] = float(answer["retry-after"]) if "retry-after" in answer else None
    except ValueError:
        pass
    if "containerId" in st.path_params:
        facts["containerId"] = ids.canonical_container_id(st.path_params["containerId"])
    if op == "getJob":
        facts["jobId"] = st.path_params.get("jobId")
    if body and (op in _JOB_FACTS or status >= 400):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            error = parsed.get("error")
            if isinstance(error, dict):
                facts["errorCode"] = error.get("code")
                details = error.get("details")
                if isinstance(details, dict) and isinstance(details.get("jobId"), str):
                    facts["jobId"] = details["jobId"]
            elif op == "getJob":
                facts["jobStatus"] = parsed.get("status")
            elif isinstance(parsed.get("jobId"), str):
                facts["jobId"] = parsed["jobId"]
    return facts


ABORT = "layers.abort"  # the ASGI extension serving/protocol.py offers: cut the connection


class DropConnection(Exception):
    """Raised after the response has started, so the server cuts the connection."""


async def drop_connection(scope: Scope, send: Send) -> None:
    """Cut the connection without an answer; raises DropConnection (the journal records the
    request as dropped, status 0). Served by serving/protocol.py, the socket closes before any
    status line; an in-process client (no protocol to ask) gets a started answer cut short."""
    state.current().dropped = True
    abort = (scope.get("extensions") or {}).get(ABORT)
    if abort is not None:
        abort()
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"1000")]})
    raise DropConnection()


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

        judged = self.service.config.client_report
        pending: list[list] = []  # --client-report: the answer's headers, until its body

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                # The journal entry is written before the client can see the answer, so a
                # client that reads the journal next finds it there (with --client-report,
                # before the body's first bytes: the report reads the answer's job and code).
                if not st.dropped:
                    if judged:
                        pending.append(list(message.get("headers", [])))
                    else:
                        await self._journal(scope, st, message["status"])
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"x-request-id" not in names:
                    headers.append((b"x-request-id", st.request_id.encode()))
                if st.rate_class and b"x-ratelimit-endpoint-class" not in names:
                    headers.append((b"x-ratelimit-endpoint-class", st.rate_class.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and pending:
                await self._journal(scope, st, status[0], facts=client_facts(
                    st, status[0], pending.pop(), message.get("body", b"")))
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
            facts = client_facts(st, 0, [], b"") if judged else None
            if st.dropped:  # an injected fault cut the connection: no answer was given
                await self._journal(scope, st, 0, dropped=True, facts=facts)
            elif not status:  # no answer at all (the client went away first)
                await self._journal(scope, st, 0, facts=facts)

    async def _journal(self, scope: Scope, st: state.RequestState, status: int,
                       dropped: bool = False, facts: dict[str, Any] | None = None) -> None:
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
                **(facts or {}),
            })
        except StoreUnavailable:  # a stalled store: the answer goes out without its entry
            pass
        except Exception:  # the journal must never break a response
            log.exception("journal write failed")
