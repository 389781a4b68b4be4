"""Variants built at the HTTP level: plain ASGI wrappers around the real mock's app, so they
need nothing of its internals (only the `create_app` factory).

- `RateLimiter`: per-key token buckets at the standard tier (D13: per minute, read 120,
  light_write 60, job_start 20), answering 429 RATE_LIMITED in the D5 envelope with
  `Retry-After` in whole seconds. The buckets' capacities are the real tier's; their minute is
  scaled (`minute` seconds) so that the suite never waits on a real minute.
- `ExtraFields`: every JSON object in a response body gains a field the schema allows (the
  response schemas are open), as a real implementation's informational fields would.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

TIER = {"read": 120, "light_write": 60, "job_start": 20}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def endpoint_class(method: str, path: str) -> str:
    if method in ("GET", "HEAD"):
        return "read"
    if method == "POST" and (path.endswith("/regenerate") or
                             (path.startswith("/v1/projects/") and path.endswith("/content"))):
        return "job_start"
    return "light_write"


def _key(scope: dict) -> str | None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


class _Wrapper:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.service = getattr(app, "service", None)


class RateLimiter(_Wrapper):
    def __init__(self, app: Any, minute: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(app)
        self.minute = minute
        self.clock = clock
        self.buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self.lock = threading.Lock()
        self.refused = 0

    def take(self, key: str, cls: str) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        cap = TIER[cls]
        rate = cap / self.minute
        now = self.clock()
        with self.lock:
            tokens, last = self.buckets.get((key, cls), (float(cap), now))
            tokens = min(cap, tokens + (now - last) * rate)
            if tokens >= 1:
                self.buckets[(key, cls)] = (tokens - 1, now)
                return 0.0
            self.buckets[(key, cls)] = (tokens, now)
            self.refused += 1
            return (1 - tokens) / rate

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        key = _key(scope) if scope["type"] == "http" else None
        if key is None or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        cls = endpoint_class(scope["method"], scope["path"])
        wait = self.take(key, cls)
        if not wait:
            await self.app(scope, receive, send)
            return
        rid = "req_" + "".join(random.choice(_CROCKFORD) for _ in range(26))
        body = json.dumps({"error": {"code": "RATE_LIMITED", "requestId": rid,
                                     "message": f"The {cls} bucket of this key is empty."}})
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"x-request-id", rid.encode()),
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
            (b"x-ratelimit-endpoint-class", cls.encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})


def _add_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {**{k: _add_fields(v) for k, v in value.items()},
                "vendorNote": "an informational field the schema allows"}
    if isinstance(value, list):
        return [_add_fields(v) for v in value]
    return value


class ExtraFields(_Wrapper):
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", [])]
            ctype = dict(headers).get(b"content-type", b"")
            if body and b"json" in ctype:
                body = json.dumps(_add_fields(json.loads(body))).encode()
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def wrap_app(wrapper: Callable[[Any], Any]) -> None:
    """Make the mock's app factory return the wrapped app (before mock.cli imports it)."""
    import layers_kit.mock.web.app as web_app

    original = web_app.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        return wrapper(original(*args, **kwargs))

    web_app.create_app = create_app


class BodyRewriter(_Wrapper):
    """Rewrites the JSON body of the requests `matches(method, path)` picks before the mock
    validates it: how an implementation that skips part of its request validation behaves."""

    def __init__(self, app: Any, matches: Callable[[str, str], bool],
                 rewrite: Callable[[Any], Any]) -> None:
        super().__init__(app)
        self.matches = matches
        self.rewrite = rewrite

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not self.matches(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            body = json.dumps(self.rewrite(json.loads(body))).encode()
        except ValueError:
            pass  # not JSON: the mock refuses it as it would
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)
