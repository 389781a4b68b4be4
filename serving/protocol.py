"""The HTTP protocol the kit's servers (the mock, the validating proxy) serve with: uvicorn's
httptools protocol plus a read deadline and a bound on the header section.

uvicorn closes idle keep-alive connections, but cancels that timer on the first byte of a new
request and has no deadline for receiving one: 200 connections sending a header (or a body)
byte by byte were held forever, each a descriptor (slowloris). Here a client has
`read_timeout` seconds, from the connection's start or the end of the previous response, to
send a whole request, headers and body; a slower connection is closed. The deadline is off
while the application works on a request, so a slow answer (the mock's `Prefer: latency`, a
slow store, the proxy's target) is not cut.

httptools buffers a header section of any size (a 16 MB header value was read whole, a 150 MB
one grew the proxy by 270 MiB). Past `MAX_HEAD_BYTES` without the end of the headers, the
protocol answers 431 itself, in the D5 envelope with an `X-Request-Id` made by `request_id`
(a class attribute: the mock sets its own generator), and closes the connection.

An idle keep-alive connection is closed after the same `read_timeout` (uvicorn's own 5 s is
replaced): longer than the idle expiry of common clients (httpx 5 s, undici 4 s), so such a
client never sends a request on a connection the server is closing at that moment. With equal
timers (httpx's 5 s against uvicorn's 5 s) a loaded machine lost requests to that race
(`httpx.ReadError` on a POST in a 400-pair flood through the proxy).

A response whose length is known goes out in one socket write: uvicorn writes the status line
and headers, then the body, each a `send()` on a loopback socket that also does the receiving
side's work, and each a packet the client reads on its own (TCP_NODELAY). The head is held
(`_OneWrite`) until the body's first write, or written as it was when no body follows (HEAD,
204, 304, chunked, a failure before the body).

Both settings are class attributes, since uvicorn builds the protocol itself (and, with
workers, imports it by name in each worker process): set them per process before serving.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_READ_TIMEOUT = 10.0
ABORT = "layers.abort"  # the scope extension that cuts the connection (see on_headers_complete)
MAX_HEAD_BYTES = 64 * 1024

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def default_request_id() -> str:
    """`req_` and a ULID: 48 bits of milliseconds and 80 random bits, 26 Crockford base32
    characters."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "req_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def too_large(request_id: str) -> bytes:
    """The whole 431 answer, in the D5 envelope, that closes the connection."""
    body = orjson.dumps({"error": {
        "code": "VALIDATION_FAILED", "requestId": request_id,
        "message": f"The request's header section is larger than {MAX_HEAD_BYTES // 1024} KiB."}})
    return (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\nconnection: close\r\n"
            b"x-request-id: " + request_id.encode() + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    read_timeout: float = DEFAULT_READ_TIMEOUT
    # makes the X-Request-Id of the protocol's own 431 (a staticmethod when set on the class)
    request_id: Callable[[], str] = staticmethod(default_request_id)

    _read_deadline: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _in_head = True
    _discarding = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.read_timeout  # one idle rule: see the module's docstring

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES \
                and not self.transport.is_closing():
            # Answer, then read and drop what the client still sends until the deadline:
            # closing with unread data would reset the connection and lose the answer.
            self._discarding = True
            self.transport.write(too_large(type(self).request_id()))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self._arm(min(self.read_timeout, 2.0))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        # An ASGI extension: the application may cut the connection without any answer (the
        # mock's dropped connections: no status line, as a crashed server or a network does).
        self.scope.setdefault("extensions", {})[ABORT] = self._abort  # type: ignore[index]
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, _OneWrite):
            cycle.transport = _OneWrite(self.transport, cycle)

    def _abort(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the whole request is in: the application's own time is not limited

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float | None = None) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds or self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _expired(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _OneWrite:
    """The transport as a response cycle sees it: the head of a response with a body to come
    is held and written with the body's first bytes, one `send()` instead of two.

    Measured (bench/run.py, memory store, getJob and regenerate): see bench/README.md. Anything
    but `write` and `close` goes to the real transport, so uvicorn's flow control and
    `is_closing()` are untouched."""

    __slots__ = ("_cycle", "_held", "_transport")

    def __init__(self, transport: Any, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
            return
        cycle = self._cycle
        # The head of a response with a Content-Length and a body to come: hold it. uvicorn
        # sets both before it writes the head, and writes nothing for HEAD's body.
        if cycle.response_started and not cycle.response_complete \
                and cycle.chunked_encoding is False and cycle.expected_content_length > 0 \
                and cycle.scope["method"] != "HEAD":
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


PROTOCOL = "layers_kit.serving.protocol:GuardedHttpToolsProtocol"
