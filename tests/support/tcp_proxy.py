"""A TCP forwarder on a loopback port, in a thread of the test process: the network between the
kit and a target, made to misbehave on purpose.

- `tls`: terminate TLS with this server context (a private CA's certificate, made in the test
  with trustme), so the target behind looks like an HTTPS staging server;
- `reset_share`: reset that share of the connections (seeded, so a run is reproducible), at a
  point chosen per connection: before anything, after the request arrived (the server may or
  may not have answered: the client cannot tell), or after some bytes of the answer.

Bounded: it stops with the test (`close`), and forwards only to the given loopback port.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
import threading
from collections import Counter


class TcpProxy:
    def __init__(self, upstream_port: int, *, tls: ssl.SSLContext | None = None,
                 reset_share: float = 0.0, seed: int = 1) -> None:
        self.upstream_port = upstream_port
        self.tls = tls
        self.reset_share = reset_share
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.tls))
        self.port = server.sockets[0].getsockname()[1]
        self._server = server
        self._started.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(stop()))
        self._thread.join(10)
        self._loop.close()

    def _fate(self) -> tuple[str, int]:
        """How this connection ends: ("pipe", 0), or a reset and after how many bytes."""
        if self.random.random() >= self.reset_share:
            return "pipe", 0
        where = self.random.choice(("at-once", "after-request", "mid-answer"))
        return where, self.random.randint(1, 400)

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:  # SO_LINGER 0: close() sends RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fate, budget = self._fate()
        self.counts[fate] += 1
        if fate == "at-once":
            self._reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self._reset(writer)
            return

        async def client_to_upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
                if fate == "after-request":
                    await asyncio.sleep(0.01)  # the request reached the server
                    self._reset(writer)
                    up_writer.close()
                    return
            up_writer.close()

        async def upstream_to_client() -> None:
            sent = 0
            while data := await up_reader.read(65536):
                if fate == "mid-answer" and sent + len(data) > budget:
                    writer.write(data[:max(0, budget - sent)])
                    self._reset(writer)
                    return
                sent += len(data)
                writer.write(data)
                await writer.drain()
            writer.close()

        try:
            await asyncio.gather(client_to_upstream(), upstream_to_client())
        except (OSError, ConnectionError, ssl.SSLError):
            pass
        finally:
            for w in (writer, up_writer):
                if not w.is_closing():
                    w.close()
