"""The HTTP protocol the mock serves with: uvicorn's httptools protocol plus a read deadline
and a bound on the header section.

uvicorn closes idle keep-alive connections, but cancels that timer on the first byte of a new
request and has no deadline for receiving one: 200 connections sending a header (or a body)
byte by byte were held forever, each a descriptor (slowloris). Here a client has
`read_timeout` seconds, from the connection's start or the end of the previous response, to
send a whole request, headers and body; a slower connection is closed. The deadline is off
while the mock works on a request, so `Prefer: latency` and slow stores are not cut.

httptools buffers a header section of any size (a 16 MB header value was read whole). Past
`MAX_HEAD_BYTES` without the end of the headers, the protocol answers 431 itself, in the D5
envelope with an `X-Request-Id`, and closes the connection. Smaller sections over the API's
own limit get the same 431 from `hygiene.py`, with the request journaled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from layers_kit.mock.domain import ids

DEFAULT_READ_TIMEOUT = 10.0
MAX_HEAD_BYTES = 64 * 1024


def _too_large() -> bytes:
    rid = ids.request_id()
    body = orjson.dumps({"error": {
        "code": "VALIDATION_FAILED", "requestId": rid,
        "message": f"The request's header section is larger than {MAX_HEAD_BYTES // 1024} KiB."}})
    return (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\nconnection: close\r\n"
            b"x-request-id: " + rid.encode() + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    # Set per process from the config (cli.py); a class attribute, since uvicorn builds the
    # protocol itself (and, with workers, imports it by name in each worker process).
    read_timeout: float = DEFAULT_READ_TIMEOUT

    _read_deadline: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _in_head = True
    _discarding = False

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
            self.transport.write(_too_large())
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self._arm(min(self.read_timeout, 2.0))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the whole request is in: the mock's own time is not limited

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


PROTOCOL = "layers_kit.mock.web.server:GuardedHttpToolsProtocol"
