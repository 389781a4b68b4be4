"""The app factory: the contract, the domain and the middleware put together.

Layers, outermost first:
    OuterMiddleware      request id, X-Request-Id, last-resort 500, journal
    HygieneMiddleware    ambiguous paths and headers, oversized header sections (404/401/431)
    CORSMiddleware       preflights and CORS headers, not on /__mock/ (left out with --no-cors)
    ControlMiddleware    /__mock/* and /openapi.yaml
    RouteMiddleware      our route lookup in the operation registry (built once from the spec)
    ChaosMiddleware      seeded chaos (429, 503, latency, drops after the operation ran)
    FaultMiddleware      injected faults, before authentication
    ApiMiddleware        404/405, auth, body, validation, the handler (see dispatch.py)
    Connexion            only the docs page (/docs) and /openapi.json, with D5 error handlers,
                         built on the first request for them (DocsApp)
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from layers_kit.contract import spec
from layers_kit.mock.config import Config
from layers_kit.mock.domain import fixtures
from layers_kit.mock.domain.clock import ManualClock, RealClock
from layers_kit.mock.domain.service import MockService
from layers_kit.mock.store.base import Store, open_store
from layers_kit.mock.web import chaos
from layers_kit.mock.web.control import ControlMiddleware
from layers_kit.mock.web.cors import CORSMiddleware
from layers_kit.mock.web.dispatch import ApiMiddleware, RouteMiddleware
from layers_kit.mock.web.faults import FaultMiddleware
from layers_kit.mock.web.hygiene import HygieneMiddleware
from layers_kit.mock.web.outer import OuterMiddleware
from layers_kit.mock.web.ratelimit import rate_limit
from layers_kit.mock.web.registry import Registry


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_service(config: Config, store: Store | None = None) -> MockService:
    """The domain side alone: store, clock, fixtures (seeded when the store is empty)."""
    fx = fixtures.load(config.fixtures)
    store = store or open_store(config.store, journal_size=config.journal_size,
                                timeout=config.store_timeout)
    if config.clock not in ("real", "manual"):
        raise ValueError("--clock takes real or manual")
    clock = ManualClock(store) if config.clock == "manual" else RealClock()
    service = MockService(store, clock, fx, config)
    if config.reset_on_start:
        service.reset()
    else:
        service.ensure_seeded()
    return service


def _connexion_app() -> ASGIApp:
    """Connexion serving the docs page and /openapi.json, with the D5 error handlers."""
    from connexion import AsyncApp
    from connexion.middleware.context import ContextMiddleware
    from connexion.middleware.exceptions import ExceptionMiddleware
    from connexion.middleware.lifespan import LifespanMiddleware
    from connexion.middleware.routing import RoutingMiddleware
    from connexion.middleware.server_error import ServerErrorMiddleware
    from connexion.middleware.swagger_ui import SwaggerUIMiddleware
    from connexion.options import SwaggerUIOptions
    from connexion.resolver import Resolver

    from layers_kit.mock.web.errors import HANDLERS

    app = AsyncApp(
        __name__,
        middlewares=[ServerErrorMiddleware, ExceptionMiddleware, SwaggerUIMiddleware,
                     RoutingMiddleware, LifespanMiddleware, ContextMiddleware],
    )
    app.add_api(
        copy.deepcopy(spec.load_spec()),  # Connexion checks the spec (the contract tests too)
        resolver=Resolver(function_resolver=lambda _name: _not_routed_here),
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs", spec_path="/openapi.json"),
    )
    for exc_class, handler in HANDLERS:
        app.add_error_handler(exc_class, handler)
    return app


class DocsApp:
    """Connexion, built on the first request for the docs page or /openapi.json (on a thread,
    not the event loop). Importing Connexion and letting it check the spec cost 0.7 s of CPU at
    every start of the mock, in every worker, for pages most runs never open; the API's path
    does not go through it (dispatch.py), and the spec it serves is the one the registry
    loaded at start. The lifespan protocol is answered here, as Connexion answered it (no
    handlers)."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None
        # /openapi.json's answer, per root path (the server's setting, not the client's): it
        # was serialized again on every request, ~65 ms of CPU on the event loop each.
        self._spec_json: dict[str, tuple[list, bytes]] = {}
        self._spec_lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self._app is None:
            self._app = await asyncio.to_thread(_connexion_app)
        if scope["type"] == "http" and scope["path"] == "/openapi.json" \
                and scope["method"] in ("GET", "HEAD"):
            await self._openapi_json(scope, receive, send)
            return
        await self._app(scope, receive, send)

    async def _openapi_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Connexion's /openapi.json, made once (per root path) and then sent as bytes."""
        root = scope.get("root_path", "")
        if root not in self._spec_json:
            async with self._spec_lock:
                if root not in self._spec_json:
                    got: list[dict] = []

                    async def keep(message) -> None:
                        got.append(message)

                    await self._app({**scope, "method": "GET"}, receive, keep)
                    start = next(m for m in got if m["type"] == "http.response.start")
                    body = b"".join(m.get("body", b"") for m in got
                                    if m["type"] == "http.response.body")
                    if start["status"] != 200:  # not cached: answered as it came
                        for m in got:
                            await send(m)
                        return
                    headers = [(k, v) for k, v in start.get("headers", [])
                               if k.lower() != b"content-length"]
                    self._spec_json[root] = (headers, body)
        headers, body = self._spec_json[root]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})


def create_app(config: Config | None = None, service: MockService | None = None) -> ASGIApp:
    """An ASGI app serving the contract with the mock's behaviour; fails fast on a bad spec."""
    config = config or Config()
    service = service or build_service(config)
    registry = Registry(validate_responses=config.validate_responses)
    api = ApiMiddleware(DocsApp(), steps=[rate_limit])
    faults = FaultMiddleware(api)
    chaos_state = chaos.ChaosState(chaos.from_config(config))
    routed = RouteMiddleware(chaos.ChaosMiddleware(faults, chaos_state), registry)
    control = ControlMiddleware(routed, service,
                                enabled=is_loopback(config.host) or config.admin_digest is not None,
                                admin_digest=config.admin_digest, registry=registry,
                                admin_key=config.admin_token_key, chaos=chaos_state)
    inner = CORSMiddleware(control, config.cors_origins, registry) if config.cors else control
    app = OuterMiddleware(HygieneMiddleware(inner), service)  # hygiene.py
    app.service = service  # type: ignore[attr-defined]  # for tests and the CLI
    app.registry = registry  # type: ignore[attr-defined]
    app.api = api  # type: ignore[attr-defined]
    return app


async def _not_routed_here(*args, **kwargs):
    """Connexion never dispatches an API request (ApiMiddleware answers them all)."""
    raise RuntimeError("an API request reached Connexion's dispatcher")
