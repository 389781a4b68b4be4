"""The HTTP protocol the mock serves with: uvicorn's httptools protocol plus a read deadline.

uvicorn closes idle keep-alive connections, but cancels that timer on the first byte of a new
request and has no deadline for receiving one: 200 connections sending a header (or a body)
byte by byte were held forever, each a descriptor (slowloris). Here a client has
`read_timeout` seconds, from the connection's start or the end of the previous response, to
send a whole request, headers and body; a slower connection is closed. The deadline is off
while the mock works on a request, so `Prefer: latency` and slow stores are not cut.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_READ_TIMEOUT = 10.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    # Set per process from the config (cli.py); a class attribute, since uvicorn builds the
    # protocol itself (and, with workers, imports it by name in each worker process).
    read_timeout: float = DEFAULT_READ_TIMEOUT

    _read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

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

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _expired(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


PROTOCOL = "mock.web.server:GuardedHttpToolsProtocol"
