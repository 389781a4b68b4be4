"""CORS (D13): a browser app on another origin can call the mock and read its answers.

Starlette's CORSMiddleware answers every preflight with one global list of methods; here the
methods of a preflight are those the contract defines for that path, and the request headers
allowed and the response headers exposed are read from the spec (its header parameters, its
security schemes, its response headers) plus `Content-Type` and the mock's `Prefer`. So a
browser sees what the real API would allow, and nothing here restates the contract.

- On by default for any origin (`Access-Control-Allow-Origin: *`, no credentials: browsers
  refuse credentials with a wildcard). With `--cors-origin` (repeatable) only those origins
  get CORS headers, echoed with `Vary: Origin`, and credentials are allowed (the API's keys
  travel in headers, so cookies never matter, but a client library that sends
  `credentials: "include"` still works). `--no-cors` leaves the layer out.
- A request from another origin is answered as usual; it only lacks the CORS headers, so the
  browser keeps the answer from the script (as real CORS servers do).
- `/__mock/` is never CORS-enabled: a web page must not be able to reset the mock or arm
  faults from a developer's browser.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers_kit.contract import spec
from layers_kit.mock.domain.errors import NotFound
from layers_kit.mock.web.registry import Registry
from layers_kit.mock.web.responses import error

MAX_AGE = "600"  # seconds a browser may cache a preflight answer
EXTRA_REQUEST_HEADERS = ("Content-Type", "Prefer")  # JSON bodies; the mock's Prefer controls
EXCLUDED_PREFIX = "/__mock/"


def request_headers() -> list[str]:
    """The headers a client of the contract sends: security schemes' and header parameters'."""
    doc = spec.load_spec()
    names: list[str] = []
    for scheme in doc.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            names.append(scheme["name"])
        elif scheme.get("type") == "http":
            names.append("Authorization")
    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                for p in op.get("parameters", []):
                    p = spec.resolve(p)
                    if p.get("in") == "header":
                        names.append(p["name"])
    return _unique([*names, *EXTRA_REQUEST_HEADERS])


def exposed_headers() -> list[str]:
    """Every response header the contract documents (scripts read them: Location, ETag, ...)."""
    names: list[str] = []
    for item in spec.load_spec()["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                for response in op.get("responses", {}).values():
                    names += list(spec.resolve(response).get("headers", {}))
    return _unique(names)


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for n in names:
        seen.setdefault(n.lower(), n)
    return list(seen.values())


def _with_vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with `Origin` in their Vary (added to one already there, or a new one)."""
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"vary":
            names = [n.strip().lower() for n in v.split(b",")]
            if b"origin" not in names and b"*" not in names:
                headers[i] = (k, v + b", Origin")
            return headers
    return [*headers, (b"vary", b"Origin")]


def check_origin(origin: str) -> str:
    """An origin as browsers send it (scheme://host[:port]), or a clear error at start."""
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or \
            parts.query or parts.fragment:
        raise ValueError(f"--cors-origin takes an origin like http://localhost:3000 "
                         f"(scheme, host and port, no path), got {origin!r}")
    return origin.lower()


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: Iterable[str] = (),
                 registry: Registry | None = None) -> None:
        self.app = app
        self.registry = registry or Registry()  # the path's methods come from the registry
        listed = [check_origin(o) for o in origins]
        self.any_origin = not listed or "*" in listed
        self.origins = frozenset(listed)
        self.allow_headers = ", ".join(request_headers())
        self.expose_headers = ", ".join(exposed_headers())

    def _allow(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """The headers that let a script read the answer (none for a foreign origin)."""
        if origin is None:
            return []
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        if origin.lower() not in self.origins:
            return []
        return [(b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXCLUDED_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allow = self._allow(origin)
        if scope["method"] == "OPTIONS" and origin is not None and \
                "access-control-request-method" in headers:
            await self._preflight(scope, receive, send, allow)
            return
        expose = [(b"access-control-expose-headers", self.expose_headers.encode())] \
            if allow else []

        async def send_with_cors(message: Message) -> None:
            # Vary: Origin on every answer, with an Origin or without: the CORS headers
            # depend on it, so a cache must not hand one origin's answer (or an answer to
            # no origin) to another.
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *allow, *expose]
                message = {**message, "headers": _with_vary_origin(headers)}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send,
                         allow: list[tuple[bytes, bytes]]) -> None:
        methods = self.registry.match(scope["method"], scope["path"]).allowed
        if not methods:  # not a route of the contract: the D5 404 (the preflight fails)
            response = error(NotFound("No such resource or route."))
            response.raw_headers = _with_vary_origin([*response.raw_headers, *allow])
            await response(scope, receive, send)
            return
        headers = _with_vary_origin(list(allow))
        if allow:
            headers += [
                (b"access-control-allow-methods", ", ".join(methods).encode()),
                (b"access-control-allow-headers", self.allow_headers.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
