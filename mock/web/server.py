"""The HTTP protocol the mock serves with: the guarded protocol of `serving/protocol.py` (a read
deadline against slow clients, a 431 past 64 KiB of headers), its 431 answers carrying the
mock's own request ids.

Smaller header sections over the API's own limit get the same 431 from `hygiene.py`, with the
request journaled. `cli.py` sets `read_timeout` from the config in each process.
"""

from __future__ import annotations

from layers_kit.mock.domain import ids
from layers_kit.serving import protocol
from layers_kit.serving.protocol import DEFAULT_READ_TIMEOUT, MAX_HEAD_BYTES

__all__ = ["DEFAULT_READ_TIMEOUT", "MAX_HEAD_BYTES", "PROTOCOL", "GuardedHttpToolsProtocol"]


class GuardedHttpToolsProtocol(protocol.GuardedHttpToolsProtocol):
    request_id = staticmethod(ids.request_id)


PROTOCOL = "layers_kit.mock.web.server:GuardedHttpToolsProtocol"
