"""The API's request pipeline: our route lookup, then the steps every operation goes through.

    route      registry.match: the operation and its path parameters (RouteMiddleware)
    faults     injected faults fire here, before authentication (faults.py)
    404 / 405  no such route; a path that does not take the method (Allow from the registry)
    auth       key and scopes (auth.py); fails closed without an operation
    STEPS      more checks on the authenticated request (e.g. rate limits), in order
    body       read and parsed once (body.py)
    validate   parameters and body against the operation's compiled schemas (validation.py)
    handle     Prefer, idempotency and the domain function (handlers.py)

Requests for other paths (the docs page, /openapi.json) go on to Connexion. Connexion's own
routing and validation are not on the API's path: they cost a third of the mock's time per
request and would decide, through a private key, which requests are authenticated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from layers_kit.mock.domain.errors import ApiError, NotFound
from layers_kit.mock.web import auth, body, handlers, responses, state
from layers_kit.mock.web.registry import Registry
from layers_kit.mock.web.state import RequestState
from layers_kit.mock.web.validation import validate

# Paths Connexion serves (Swagger UI and the spec as JSON); everything else is the API's.
CONNEXION_PATHS = ("/docs", "/openapi.json")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Step = Callable[[RequestState], Awaitable[None]]


class RouteMiddleware:
    """Our route lookup, first: every later layer reads the operation from the request state."""

    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            st = state.current()
            found = self.registry.match(scope["method"], scope["path"])
            st.operation, st.path_params = found.operation, found.params
            st.allowed, st.routed = found.allowed, found.routed
        await self.app(scope, receive, send)


class MethodNotAllowed(ApiError):
    code = "METHOD_NOT_ALLOWED"


class ApiMiddleware:
    """Answers every API request itself; hands the docs pages to Connexion."""

    def __init__(self, connexion_app: ASGIApp, steps: list[Step] | None = None) -> None:
        self.connexion_app = connexion_app
        self.steps: list[Step] = list(steps or [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONNEXION_PATHS):
            await self.connexion_app(scope, receive, send)
            return
        st = state.current()
        try:
            response = await self._answer(st, scope, receive)
        except body.ClientGone:
            return
        except ApiError as err:
            response = responses.error(err, st.request_id)
        await response(scope, receive, send)

    async def _answer(self, st: RequestState, scope: Scope, receive: Receive):
        if st.operation is None and not st.routed:
            if st.allowed is None:
                raise NotFound("No such resource or route.")
            raise MethodNotAllowed("This path does not accept that method.",
                                   headers={"Allow": ", ".join(st.allowed)})
        auth.authenticate(st)  # fails closed: 500 INTERNAL when routed without an operation
        for step in self.steps:
            await step(st)
        if scope["method"] in _WITH_BODY:
            await body.read(st, receive)
        kwargs = validate(st, scope.get("query_string", b""))
        return await handlers.handle(st, kwargs)
