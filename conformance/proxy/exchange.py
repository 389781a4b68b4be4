"""One request and its response as the proxy saw them, and how a report shows them (keys masked).

Bodies are kept only up to the contract's 1 MiB limit: a larger one passes through the proxy
untouched and unkept (`body` is None, `oversized` True), so memory stays bounded per exchange.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from layers_kit.conformance.secrets import masked_headers

BODY_LIMIT = 1024 * 1024  # D5 PAYLOAD_TOO_LARGE: the contract's largest body
SHOWN_BODY = 2000  # characters of a body a report shows


class Body:
    """A body being streamed: kept while it fits the limit, then only counted."""

    def __init__(self) -> None:
        self.size = 0
        self._parts: list[bytes] | None = []

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._parts is not None:
            if self.size > BODY_LIMIT:
                self._parts = None  # over the limit: forwarded, no longer kept
            else:
                self._parts.append(chunk)

    @property
    def oversized(self) -> bool:
        return self._parts is None

    @property
    def data(self) -> bytes | None:
        return None if self._parts is None else b"".join(self._parts)


@dataclass
class Exchange:
    """What one round trip through the proxy showed."""

    method: str
    url: str  # the target's URL of the request (base URL + path + query)
    path: str  # the path as the contract names it (the target's base path removed)
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    started: float  # monotonic time the request reached the proxy
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes | None = None
    ended: float = 0.0
    error: str | None = None  # the target gave no (complete) answer
    oversized: bool = False  # a body over BODY_LIMIT: forwarded, not checked
    unjudged: bool = False  # the judge was too far behind to be handed its arrival

    def header(self, name: str, *, response: bool = True) -> str | None:
        low = name.lower()
        for k, v in self.response_headers if response else self.request_headers:
            if k.lower() == low:
                return v
        return None

    def http_request(self) -> httpx.Request:
        return httpx.Request(self.method, self.url, headers=self.request_headers,
                             content=self.request_body or b"")

    def http_response(self) -> httpx.Response:
        """The response as httpx would have read it (content-encoding decoded)."""
        return httpx.Response(self.status or 0, headers=self.response_headers,
                              content=self.response_body or b"", request=self.http_request())

    def shown(self) -> dict[str, Any]:
        """The exchange as reports show it: secrets masked, bodies cut."""
        return {
            "method": self.method, "path": self.path,
            "requestHeaders": masked_headers(self.request_headers),
            "requestBody": _text(self.request_body),
            "status": self.status,
            "responseHeaders": dict(self.response_headers),
            "responseBody": _text(self.response_body),
            "error": self.error,
        }


def _text(body: bytes | None) -> str | None:
    if not body:
        return None
    text = body.decode("utf-8", "replace")
    return text if len(text) <= SHOWN_BODY else text[:SHOWN_BODY] + "…"
