"""How the kit and the proxy show secrets: enough to recognise a key, never enough to use it.

One home, so that a report from `run` and one from `proxy` mask the same headers the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

SECRET_HEADERS = frozenset({"x-api-key", "authorization", "x-admin-token", "cookie",
                            "proxy-authorization"})


def mask(value: str) -> str:
    """The first 8 characters of a secret and an ellipsis (the mock's journal masks alike)."""
    return value[:8] + "…" if len(value) > 8 else "…"


def masked_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a report shows them: secrets masked, a Bearer scheme kept readable."""
    out: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        if low == "authorization" and " " in value:
            scheme, _, token = value.partition(" ")
            value = f"{scheme} {mask(token.strip())}"
        elif low in SECRET_HEADERS:
            value = mask(value)
        out[name] = value
    return out
