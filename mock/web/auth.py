"""Authentication, rate limits (D13) and scopes (D8), after routing so that the operation is
known.

Connexion does not enforce scopes for apiKey and bearer schemes; the spec names each
operation's scope in `x-required-scopes`, and this layer checks it before any validation, so a
caller without the right key learns nothing about the request's shape.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from mock import spec
from mock.domain.auth import require_scopes
from mock.web import state

ROUTING = "connexion_routing"


def operation_id(scope: Scope) -> str | None:
    """The contract's operationId of the routed request (Connexion keeps the resolved name)."""
    resolved = scope.get("extensions", {}).get(ROUTING, {}).get("operation_id")
    return resolved.rsplit(".", 1)[-1] if resolved else None


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        ops = spec.operations()
        self.scopes = {op_id: o["operation"].get("x-required-scopes", [])
                       for op_id, o in ops.items()}
        self.rate_class = {op_id: o["operation"].get("x-rate-limit-class")
                           for op_id, o in ops.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op_id = operation_id(scope) if scope["type"] == "http" else None
        if op_id is None:
            await self.app(scope, receive, send)
            return
        st = state.current()
        st.operation_id = op_id
        st.rate_class = self.rate_class.get(op_id)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        principal = st.service.authenticate(headers.get("x-api-key"),
                                            headers.get("authorization"))
        st.principal = principal
        # D13: every authenticated request takes a token, before its scope and its shape are
        # looked at; a 429 is raised before any idempotency claim, so it is never stored.
        st.service.rate_limit(principal, st.rate_class)
        require_scopes(principal, self.scopes.get(op_id, []))
        await self.app(scope, receive, send)
