"""Authentication and scopes (D8), failing closed.

The operation comes from our own route lookup (the registry), never from a framework's private
routing key: a request that the spec routes to an operation the registry does not know, or that
reaches this step without an operation, is refused with 500 INTERNAL before anything else runs.
The spec names each operation's scopes in `x-required-scopes`; they are checked before any
validation, so a caller without the right key learns nothing about the request's shape.
"""

from __future__ import annotations

import logging

from layers_kit.mock.domain.auth import require_scopes
from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.web.state import RequestState

log = logging.getLogger("layers.mock")


def authenticate(st: RequestState) -> None:
    """Set `st.principal` or raise: 401, 403, or 500 when the operation is unknown."""
    op = st.operation
    if op is None:
        log.error("request %s %s reached authentication without an operation",
                  st.scope.get("method") if st.scope else "?",
                  st.scope.get("path") if st.scope else "?")
        raise ApiError("The request matched no operation of the contract.", code="INTERNAL")
    principal = st.service.authenticate(st.headers.get("x-api-key"),
                                        st.headers.get("authorization"))
    st.principal = principal
    require_scopes(principal, list(op.scopes))
