"""API keys, orgs and scopes (D8). Keys compare in constant time and are never logged in full."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from layers_kit.mock.domain.errors import ForbiddenScope, Unauthenticated


@dataclass(frozen=True)
class Principal:
    key_id: str
    org_id: str
    scopes: frozenset[str]
    masked: str
    rate_tier: str | None = None  # D13: a key always on this rate-limit tier


@dataclass(frozen=True)
class _Key:
    secret: bytes
    principal: Principal


def mask(key: str) -> str:
    """Enough of a key to recognise it in a log, never enough to use it."""
    return key[:8] + "…" if len(key) > 8 else "…"


class Keyring:
    def __init__(self, keys: list[dict]) -> None:
        self._keys = [
            _Key(k["key"].encode(), Principal(k["id"], k["org"], frozenset(k["scopes"]),
                                             mask(k["key"]), k.get("rateLimitTier")))
            for k in keys
        ]

    def authenticate(self, api_key: str | None, authorization: str | None) -> Principal:
        """D8: X-Api-Key wins over Authorization: Bearer when both come."""
        if api_key is None and authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
                raise Unauthenticated("The Authorization header must be 'Bearer <API key>'.")
            api_key = token.strip()
        if not api_key:
            raise Unauthenticated()
        given = api_key.encode("utf-8", "surrogateescape")
        found = None
        for k in self._keys:  # compare with every key so timing does not tell which matched
            if hmac.compare_digest(k.secret, given):
                found = k.principal
        if found is None:
            raise Unauthenticated("The API key is not valid.")
        return found


def require_scopes(principal: Principal, scopes: list[str]) -> None:
    for scope in scopes:
        if scope not in principal.scopes:
            raise ForbiddenScope(scope)
