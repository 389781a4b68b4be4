"""Calls the operation's handler once Connexion has routed and validated the request.

Connexion's own handler invocation (its parameter and response decorators, rebuilt per request)
costs about 0.6 ms per request, a third of the mock's time; the spec's routing, security
placement and validation stay Connexion's. Handlers are the same functions Connexion resolved by
operationId at start (so a missing one still fails the start), called with the path parameters
and the body the body guard parsed (and Connexion validated).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from mock.web import handlers, state
from mock.web.auth import operation_id

_HANDLERS = {name: getattr(handlers, name) for name in handlers.__all__}
_WITH_BODY = {"POST", "PUT", "PATCH"}


class DispatchMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op_id = operation_id(scope) if scope["type"] == "http" else None
        handler = _HANDLERS.get(op_id) if op_id else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        st = state.current()
        st.scope = scope
        kwargs = dict(scope.get("path_params") or {})
        if scope["method"] in _WITH_BODY and "body" in handlers.TAKES_BODY[op_id]:
            kwargs["body"] = st.body  # parsed once, by the body guard
        response = await handler(**kwargs)
        await response(scope, receive, send)

