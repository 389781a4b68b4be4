"""The proxy as an ASGI app: forward every request and response unchanged, streaming, and hand
each finished exchange to the judge.

Only hop-by-hop headers are dropped and `Host` names the target (what any reverse proxy does);
bodies travel as they came, chunk by chunk, compressed or not. The proxy keeps a body only up
to the contract's 1 MiB, so a large upload or download costs no memory and is counted as
unchecked. `/__proxy/` is the proxy's own: `GET /__proxy/violations` lists what it found so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.types import Message, Receive, Scope, Send

from layers_kit.conformance.proxy.exchange import Body, Exchange
from layers_kit.conformance.proxy.judge import Judge

log = logging.getLogger("layers.proxy")

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade", b"host"})


class ProxyApp:
    def __init__(self, target: str, judge: Judge, *, timeout: float = 60.0) -> None:
        parts = urlsplit(target)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path.rstrip("/")
        self.judge = judge
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["path"].startswith("/__proxy/"):
                await self._own(scope, send)
            else:
                await self._forward(scope, receive, send)
        # websockets are not part of the contract: refused by not answering them

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(
                    timeout=httpx.Timeout(self.timeout, connect=10.0), follow_redirects=False,
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _own(self, scope: Scope, send: Send) -> None:
        if scope["path"] == "/__proxy/violations" and scope["method"] == "GET":
            status, body = 200, orjson.dumps(self.judge.snapshot(), option=orjson.OPT_INDENT_2)
        else:
            status, body = 404, orjson.dumps({"error": {
                "code": "NOT_FOUND", "message": "The proxy serves GET /__proxy/violations."}})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None, "the proxy's client starts with the lifespan"
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.origin + self.base_path + raw_path + (f"?{query}" if query else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        names = {k.lower() for k, _ in scope["headers"]}
        has_body = b"content-length" in names or b"transfer-encoding" in names
        ex = Exchange(scope["method"], url, scope["path"], headers, None, time.monotonic())
        self.judge.arrived(ex)
        body_in = Body()
        body_out = Body()

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

        request = self._client.build_request(scope["method"], url, headers=headers,
                                             content=upload() if has_body else None)
        started = False
        try:
            response = await self._client.send(request, stream=True)
            try:
                ex.status = response.status_code
                ex.response_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                                       for k, v in response.headers.raw
                                       if k.lower() not in HOP_BY_HOP]
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                        for k, v in ex.response_headers]})
                started = True
                async for chunk in response.aiter_raw():
                    body_out.add(chunk)
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                await response.aclose()
        except (httpx.HTTPError, OSError) as exc:
            ex.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if not started:
                await _bad_gateway(send, f"layers-conformance proxy: the target {self.origin} "
                                         f"did not answer ({ex.error})")
            else:
                raise  # the answer was cut short: cut the client's connection too
        finally:
            ex.ended = time.monotonic()
            ex.request_body = body_in.data
            ex.response_body = body_out.data
            ex.oversized = body_in.oversized or body_out.oversized
            self.judge.finished(ex)


async def _bad_gateway(send: Send, text: str) -> None:
    body = text.encode()
    message: Message = {"type": "http.response.start", "status": 502,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]}
    await send(message)
    await send({"type": "http.response.body", "body": body})

