"""The control API under /__mock/ (D9), outside the contract, plus the spec as YAML and the
reference page at /reference (D12).

    POST   /__mock/reset             back to the fixtures (state, journal, faults, clock)
    GET    /__mock/clock             the clock's kind and reading
    POST   /__mock/clock/advance     {"seconds": n} moves a manual clock forward
    GET    /__mock/requests          the journal, newest first (?limit=, ?operationId=)
    GET    /__mock/faults            the faults still armed
    POST   /__mock/faults            arm a fault (see faults.normalize)
    DELETE /__mock/faults            disarm them all

Closed (404) when the mock listens on a non-loopback address without --admin-token; with a
token, every call must carry it in `X-Admin-Token`.
"""

from __future__ import annotations

import hmac
import json
import math
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mock import spec
from mock.domain.clock import iso
from mock.domain.errors import ApiError, Conflict, NotFound, Unauthenticated, ValidationFailed
from mock.domain.service import MockService, dumps
from mock.web import faults
from mock.web.responses import error


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationFailed([{"path": "body", "message": "is not valid JSON"}]) from None
    if not isinstance(data, dict):
        raise ValidationFailed([{"path": "body", "message": "must be a JSON object"}])
    return data


async def _reference() -> Response:
    """The contract's offline reference page (D12), built by contract.page, never fetched."""
    from contract import page  # the publishing package; imported when the page is asked for

    try:
        body = await anyio.to_thread.run_sync(page.page_for, spec.spec_path())
    except page.PageUnavailable as err:
        return Response(f"The reference page is not available: {err}. Swagger UI is at /docs.\n",
                        status_code=503, media_type="text/plain")
    return Response(body, media_type="text/html; charset=utf-8")


class ControlMiddleware:
    def __init__(self, app: ASGIApp, service: MockService, *, enabled: bool,
                 admin_token: str | None) -> None:
        self.app = app
        self.service = service
        self.enabled = enabled
        self.admin_token = admin_token
        self.routes = {
            ("POST", "/__mock/reset"): self.reset,
            ("GET", "/__mock/clock"): self.clock,
            ("POST", "/__mock/clock/advance"): self.advance,
            ("GET", "/__mock/requests"): self.requests,
            ("GET", "/__mock/faults"): self.list_faults,
            ("POST", "/__mock/faults"): self.add_fault,
            ("DELETE", "/__mock/faults"): self.clear_faults,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/openapi.yaml":
            body = spec.spec_path().read_bytes()
            await Response(body, media_type="application/yaml")(scope, receive, send)
            return
        if scope["type"] == "http" and path == "/reference":
            await (await _reference())(scope, receive, send)
            return
        if scope["type"] != "http" or not path.startswith("/__mock"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.dispatch(request)
        except ApiError as err:
            response = error(err)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        if not self.enabled:
            raise NotFound("The control API is off: the mock listens beyond loopback without "
                           "--admin-token.")
        if self.admin_token is not None:
            given = request.headers.get("x-admin-token", "")
            if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
                raise Unauthenticated("The control API needs the X-Admin-Token header.")
        handler = self.routes.get((request.method, request.url.path.rstrip("/")))
        if handler is None:
            raise NotFound("No such control endpoint; see the README's control API section.")
        return await handler(request)

    async def reset(self, request: Request) -> Response:
        self.service.reset()
        return _json({"reset": True, "clock": self._clock()})

    def _clock(self) -> dict[str, Any]:
        now = self.service.clock.now()
        return {"kind": self.service.clock.kind, "now": iso(now)}

    async def clock(self, request: Request) -> Response:
        return _json(self._clock())

    async def advance(self, request: Request) -> Response:
        body = await _body(request)
        seconds = body.get("seconds")
        if (not isinstance(seconds, int | float) or isinstance(seconds, bool)
                or not math.isfinite(seconds) or not 0 <= seconds <= 10 * 365 * 86400):
            raise ValidationFailed([{"path": "body.seconds",
                                     "message": "must be a number of seconds from 0 to 10 years"}])
        try:
            self.service.clock.advance(float(seconds))
        except ValueError as exc:
            raise Conflict(str(exc).capitalize() + ".") from None
        return _json(self._clock())

    async def requests(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise ValidationFailed([{"path": "query.limit",
                                     "message": "must be a whole number from 1 to 1000"}])
        entries = self.service.store.journal(int(raw))
        op = request.query_params.get("operationId")
        if op:
            entries = [e for e in entries if e.get("operationId") == op]
        return _json({"requests": entries})

    async def list_faults(self, request: Request) -> Response:
        return _json({"faults": faults.listing(self.service.store)})

    async def add_fault(self, request: Request) -> Response:
        try:
            fault = faults.normalize(await _body(request))
        except ValueError as exc:
            raise ValidationFailed([{"path": "body", "message": str(exc)}]) from None
        faults.add(self.service.store, fault)
        return _json(fault, 201)

    async def clear_faults(self, request: Request) -> Response:
        faults.clear(self.service.store)
        return _json({"faults": []})


