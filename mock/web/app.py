"""The app factory: the contract, the domain and the middleware put together.

Layers, outermost first:
    OuterMiddleware      request id, X-Request-Id, last-resort 500, journal
    CORSMiddleware       preflights and CORS headers, not on /__mock/ (left out with --no-cors)
    ControlMiddleware    /__mock/* and /openapi.yaml
    Connexion:           ServerError, Exception (D5 handlers), Swagger UI (/docs, /openapi.json),
                         Routing, FaultMiddleware, AuthMiddleware, BodyGuardMiddleware,
                         request validation, response validation (optional),
                         DispatchMiddleware (calls the handler; see dispatch.py)
"""

from __future__ import annotations

import copy
import ipaddress

from connexion import AsyncApp
from connexion.datastructures import MediaTypeDict
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver
from connexion.validators import VALIDATOR_MAP
from starlette.types import ASGIApp

from mock import spec
from mock.config import Config
from mock.domain import fixtures
from mock.domain.clock import ManualClock, RealClock
from mock.domain.service import MockService
from mock.store.base import Store, open_store
from mock.web.auth import AuthMiddleware
from mock.web.body import BodyGuardMiddleware
from mock.web.control import ControlMiddleware
from mock.web.cors import CORSMiddleware
from mock.web.dispatch import DispatchMiddleware
from mock.web.errors import HANDLERS
from mock.web.faults import FaultMiddleware
from mock.web.outer import OuterMiddleware
from mock.web.validation import BodyValidator, ParamsValidator


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
    store = store or open_store(config.store, journal_size=config.journal_size)
    if config.clock not in ("real", "manual"):
        raise ValueError("--clock takes real or manual")
    clock = ManualClock(store) if config.clock == "manual" else RealClock()
    service = MockService(store, clock, fx, config)
    if config.reset_on_start:
        service.reset()
    else:
        service.ensure_seeded()
    return service


def create_app(config: Config | None = None, service: MockService | None = None) -> ASGIApp:
    """An ASGI app serving the contract with the mock's behaviour; fails fast on a bad spec."""
    config = config or Config()
    service = service or build_service(config)
    # Response validation is a routed layer of its own: left out unless asked for.
    checking = [ResponseValidationMiddleware] if config.validate_responses else []
    connexion_app = AsyncApp(
        __name__,
        middlewares=[
            ServerErrorMiddleware, ExceptionMiddleware, SwaggerUIMiddleware, RoutingMiddleware,
            FaultMiddleware, AuthMiddleware, BodyGuardMiddleware, RequestValidationMiddleware,
            *checking, DispatchMiddleware, LifespanMiddleware, ContextMiddleware,
        ],
    )
    validators = {**VALIDATOR_MAP, "parameter": ParamsValidator,
                  "body": MediaTypeDict({"*/*json": BodyValidator})}
    connexion_app.add_api(
        copy.deepcopy(spec.load_spec()),  # parsed once; Connexion resolves refs in its copy
        resolver=RelativeResolver("mock.web.handlers"),
        strict_validation=True,
        validate_responses=config.validate_responses,
        validator_map=validators,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs", spec_path="/openapi.json"),
    )
    for exc_class, handler in HANDLERS:
        connexion_app.add_error_handler(exc_class, handler)
    control = ControlMiddleware(connexion_app, service,
                                enabled=is_loopback(config.host) or config.admin_digest is not None,
                                admin_digest=config.admin_digest)
    inner = CORSMiddleware(control, config.cors_origins) if config.cors else control
    app = OuterMiddleware(inner, service)
    app.service = service  # type: ignore[attr-defined]  # for tests and the CLI
    return app
