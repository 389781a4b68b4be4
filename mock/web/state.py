"""Per-request state shared by the middleware layers and the handlers.

The outermost middleware creates it; inner layers fill in what they learn (the operation, the
caller). A context variable carries it, since Connexion rebuilds scopes and requests on the way.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from layers_kit.mock.domain import ids

if TYPE_CHECKING:
    from layers_kit.mock.domain.auth import Principal
    from layers_kit.mock.domain.service import MockService
    from layers_kit.mock.web.registry import Operation

_current: ContextVar[RequestState] = ContextVar("layers_request_state")


@dataclass
class RequestState:
    service: MockService
    request_id: str = field(default_factory=ids.request_id)
    started: float = field(default_factory=time.perf_counter)
    operation: Operation | None = None  # from our route lookup (registry.match)
    path_params: dict[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] | None = None  # the path's methods; None: no such route
    routed: bool = False  # the spec routes method and path to an operationId
    principal: Principal | None = None
    replayed: bool = False
    dropped: bool = False  # an injected fault cuts the connection instead of answering
    scope: dict | None = None  # the ASGI scope
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, parsed once
    body: Any = None  # the request's JSON body, parsed once by the body guard
    body_read: bool = False  # the body guard read it (an early answer never does)
    body_bytes: bytes = b""

    @property
    def operation_id(self) -> str | None:
        return self.operation.operation_id if self.operation else None

    @property
    def rate_class(self) -> str | None:
        return self.operation.rate_class if self.operation else None


def begin(service: MockService, scope: dict | None = None) -> RequestState:
    st = RequestState(service, scope=scope)
    if scope is not None:
        # Parsed once for every layer (a repeated header keeps its last value; Prefer, which
        # may repeat, is read from the scope by its own layer).
        st.headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                      for k, v in scope.get("headers", [])}
    _current.set(st)
    return st


def current() -> RequestState:
    return _current.get()
