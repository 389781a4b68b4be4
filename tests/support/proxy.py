"""The validating proxy and its test servers as separate processes on free loopback ports.

Each prints `listening on http://...`; it is read from the output, so runs never race for a
port. Stopped by process id (SIGTERM, then SIGKILL), as every server in the tests is.
"""

from __future__ import annotations

import sys

from layers_kit.mock.launcher import RunningMock, start_process


def start(cmd: list[str], timeout: float = 30) -> RunningMock:
    return start_process(cmd, timeout=timeout, what=" ".join(cmd[:4]))


def start_proxy(target: str, *args: str) -> RunningMock:
    """`layers-conformance proxy --target TARGET --listen 127.0.0.1:0 ARGS`."""
    return start([sys.executable, "-m", "layers_kit.conformance", "proxy", "--target", target,
                  "--listen", "127.0.0.1:0", *args])


def start_broken_target() -> RunningMock:
    """The tiny server of tests/broken/proxy_targets.py."""
    return start([sys.executable, "-m", "tests.broken.proxy_targets", "--port", "0"])
