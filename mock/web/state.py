"""Per-request state shared by the middleware layers and the handlers.

The outermost middleware creates it; inner layers fill in what they learn (the operation, the
caller). A context variable carries it, since Connexion rebuilds scopes and requests on the way.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mock.domain import ids

if TYPE_CHECKING:
    from mock.domain.auth import Principal
    from mock.domain.service import MockService

_current: ContextVar[RequestState] = ContextVar("layers_request_state")


@dataclass
class RequestState:
    service: MockService
    request_id: str = field(default_factory=ids.request_id)
    started: float = field(default_factory=time.perf_counter)
    operation_id: str | None = None
    rate_class: str | None = None
    principal: Principal | None = None
    replayed: bool = False
    scope: dict | None = None  # the ASGI scope, set when the request reaches its handler
    body: Any = None  # the request's JSON body, parsed once by the body guard


def begin(service: MockService) -> RequestState:
    st = RequestState(service)
    _current.set(st)
    return st


def current() -> RequestState:
    return _current.get()
