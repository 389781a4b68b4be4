"""The proxy as an ASGI app: forward every request and response unchanged, streaming, and hand
each finished exchange to the judge.

Only hop-by-hop headers are dropped, in both directions: the fixed ones and every header the
`Connection` header names (RFC 9110 §7.6.1); `Host` names the target (what any reverse proxy
does). `Date` and `Server` are the target's, passed through once (the proxy's server adds
none). Bodies travel as they came, chunk by chunk, compressed or not. The proxy keeps a body
only up to the contract's 1 MiB, so a large upload or download costs no memory and is counted
as unchecked.

When the target gives no answer (connection refused or reset, a TLS failure, a timeout, or no
free connection to it), the client gets the proxy's own answer in the D5 envelope naming the
reason: 502, 504 for a timeout, 503 (with Retry-After) when the proxy's pool to the target
stayed full for `pool_timeout` seconds. Such an exchange is a transport failure, never a
server violation: it is kept apart in the ledger and the reports, and the run "could not
judge" (exit 2) unless the target broke the contract elsewhere.

`/__proxy/` is the proxy's own, never forwarded: `GET /__proxy/violations` lists what it found
so far. It answers only requests whose `Host` names the proxy itself (a loopback name, its
listen address, the address the connection came in on, or an `--allow-host` name); any other
gets 421, so a web page that rebinds its own name to the proxy cannot read it. The request
target `*` (`OPTIONS * HTTP/1.1`) names no resource of the target: the proxy answers it 400
itself (an absolute-form target is forwarded by its path, as any origin server reads it).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Iterable
from email.utils import formatdate
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.types import Receive, Scope, Send

from layers_kit.conformance import tls
from layers_kit.conformance.client import KEEPALIVE_EXPIRY
from layers_kit.conformance.proxy.exchange import Body, Exchange
from layers_kit.conformance.proxy.judge import Judge
from layers_kit.serving.protocol import default_request_id

log = logging.getLogger("layers.proxy")

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade", b"host", b"proxy-authenticate",
                        b"proxy-authorization"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_POOL_TIMEOUT = 5.0


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The end-to-end headers: without the hop-by-hop ones, nor those `Connection` names."""
    headers = list(headers)
    named = {token.strip().lower() for k, v in headers if k.lower() == b"connection"
             for token in v.split(b",")}
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in named]


class ProxyApp:
    def __init__(self, target: str, judge: Judge, *, timeout: float = 60.0,
                 tls_settings: tls.TlsSettings = tls.DEFAULT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 pool_timeout: float = DEFAULT_POOL_TIMEOUT,
                 own_hosts: Iterable[str] = ()) -> None:
        parts = urlsplit(target)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.hostname or parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.judge = judge
        self.timeout = timeout
        self.tls_settings = tls_settings
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.own_hosts = {h.strip("[]").lower() for h in own_hosts
                          if h and h not in ("0.0.0.0", "::")}
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if not scope["path"].startswith("/"):
                await _answer(send, 400, "VALIDATION_FAILED",
                              "layers-conformance proxy: the request target must be a path "
                              f"(got {scope['path'][:100]!r}); `*` is not forwarded.")
            elif scope["path"].startswith("/__proxy/"):
                await self._own(scope, send)
            else:
                await self._forward(scope, receive, send)
        # websockets are not part of the contract: refused by not answering them

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(
                    verify=tls.context(self.tls_settings), follow_redirects=False,
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0),
                                          pool=self.pool_timeout),
                    limits=httpx.Limits(max_connections=self.max_connections,
                                        max_keepalive_connections=min(self.max_connections,
                                                                      200),
                                        keepalive_expiry=KEEPALIVE_EXPIRY))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _is_own_host(self, scope: Scope) -> bool:
        """Does the request's Host name the proxy itself (not a name rebound to it)?"""
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else \
            host[1:].split("]", 1)[0]
        name = name.strip().lower().rstrip(".")
        if not name:
            return False  # HTTP/1.1 requires a Host; without one, nothing names the proxy
        if name in LOOPBACK_NAMES or name in self.own_hosts:
            return True
        server = scope.get("server")
        if server and name == str(server[0]).lower():
            return True  # the address the client connected to
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    async def _own(self, scope: Scope, send: Send) -> None:
        if not self._is_own_host(scope):
            await _answer(send, 421, "MISDIRECTED_REQUEST",
                          "layers-conformance proxy: /__proxy/ answers only requests for the "
                          "proxy's own host (a loopback name, its listen address, or "
                          "--allow-host).")
            return
        if scope["path"] == "/__proxy/violations" and scope["method"] == "GET":
            await _send_json(send, 200, orjson.dumps(self.judge.snapshot(),
                                                     option=orjson.OPT_INDENT_2))
        else:
            await _answer(send, 404, "NOT_FOUND",
                          "The proxy serves GET /__proxy/violations.")

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None, "the proxy's client starts with the lifespan"
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.origin + self.base_path + raw_path + (f"?{query}" if query else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in strip_hop_by_hop(scope["headers"])]
        names = {k.lower() for k, _ in scope["headers"]}
        has_body = b"content-length" in names or b"transfer-encoding" in names
        ex = Exchange(scope["method"], url, scope["path"], headers, None, time.monotonic())
        self.judge.arrived(ex)
        body_in = Body()
        body_out = Body()
        transport: tuple[str, str] | None = None  # (kind, reason) when the target failed

        async def upload() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    body_in.add(chunk)
                    yield chunk
                if not message.get("more_body", False):
                    return

        try:
            request = self._client.build_request(scope["method"], url, headers=headers,
                                                 content=upload() if has_body else None)
        except (httpx.InvalidURL, ValueError) as exc:
            self.judge.refused(ex)
            await _answer(send, 400, "VALIDATION_FAILED",
                          f"layers-conformance proxy: cannot forward this request: {exc}")
            return
        started = False
        try:
            response = await self._client.send(request, stream=True)
            try:
                ex.status = response.status_code
                kept = strip_hop_by_hop(response.headers.raw)
                ex.response_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                                       for k, v in kept]
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": kept})
                started = True
                async for chunk in response.aiter_raw():
                    body_out.add(chunk)
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                await response.aclose()
        except (httpx.TransportError, OSError) as exc:
            transport = self._transport_failure(exc, started)
            ex.error = transport[1]
            if not started:
                status, retry = _STATUS[transport[0]]
                await _answer(send, status, "INTERNAL",
                              f"layers-conformance proxy: the target {self.origin} did not "
                              f"answer: {transport[1]}",
                              [(b"retry-after", b"1")] if retry else [])
            else:
                raise  # the answer was cut short: cut the client's connection too
        finally:
            ex.ended = time.monotonic()
            ex.request_body = body_in.data
            ex.response_body = body_out.data
            ex.oversized = body_in.oversized or body_out.oversized
            if transport is not None:
                self.judge.transport(ex, *transport)
            else:
                self.judge.finished(ex)

    def _transport_failure(self, exc: BaseException, started: bool) -> tuple[str, str]:
        """(kind, reason): why the target gave no (complete) answer, in words."""
        found = tls.find_tls_error(exc)
        if found is not None:
            return "tls", tls.describe(self.host, found)
        text = f"{type(exc).__name__}: {str(exc).rstrip('.')}" if str(exc) else \
            type(exc).__name__
        if isinstance(exc, httpx.PoolTimeout):
            return "pool", (f"no free connection to the target within {self.pool_timeout:g} s "
                            f"(the proxy's pool holds {self.max_connections}; "
                            "--max-connections, --pool-timeout)")
        if isinstance(exc, httpx.TimeoutException):
            return "timeout", f"{text} (no answer within --timeout {self.timeout:g} s)"
        if isinstance(exc, httpx.ConnectError):
            return "connect", text
        if started:
            return "cut", f"the answer was cut short: {text}"
        if self.origin.startswith("https:") and not self.tls_settings.client_cert and \
                isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            text += (f". Over TLS, {self.host} closing the connection this way is also how a "
                     "server that requires a client certificate refuses one: give "
                     "--client-cert and --client-key if it does")
        return "reset", text


# kind of transport failure -> (the status the client gets, whether it carries Retry-After)
_STATUS = {"tls": (502, False), "connect": (502, False), "reset": (502, False),
           "cut": (502, False), "timeout": (504, False), "pool": (503, True)}


async def _send_json(send: Send, status: int, body: bytes,
                     extra: list[tuple[bytes, bytes]] | None = None,
                     request_id: str | None = None) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (b"date", formatdate(usegmt=True).encode()),
               (b"x-request-id", (request_id or default_request_id()).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(send: Send, status: int, code: str, message: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """The proxy's own answer, in the D5 envelope with an X-Request-Id."""
    rid = default_request_id()
    body = orjson.dumps({"error": {"code": code, "message": message, "requestId": rid}})
    await _send_json(send, status, body, extra, rid)
