"""The validating proxy and its test servers as separate processes on free loopback ports.

Each prints `listening on http://...`; it is read from the output, so runs never race for a
port. Stopped by process id (SIGTERM, then SIGKILL), as every server in the tests is.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

import httpx

from layers_kit.mock.launcher import RunningMock, start_process


def start(cmd: list[str], timeout: float = 30,
          env: Mapping[str, str] | None = None) -> RunningMock:
    return start_process(cmd, timeout=timeout, what=" ".join(cmd[:4]), env=env)


def start_proxy(target: str, *args: str, env: Mapping[str, str] | None = None) -> RunningMock:
    """`layers-conformance proxy --target TARGET --listen 127.0.0.1:0 ARGS`; `env` is added to
    this process's environment."""
    return start([sys.executable, "-m", "layers_kit.conformance", "proxy", "--target", target,
                  "--listen", "127.0.0.1:0", *args],
                 env={**os.environ, **env} if env is not None else None)


def start_broken_target(*args: str) -> RunningMock:
    """The tiny server of tests/broken/proxy_targets.py (`--certfile`, `--keyfile` and
    `--client-ca` serve HTTPS: its `url` is then https)."""
    server = start([sys.executable, "-m", "tests.broken.proxy_targets", "--port", "0", *args])
    if "--certfile" in args:
        server.url = server.url.replace("http://", "https://", 1)
    return server


def violations(url: str) -> dict:
    """GET /__proxy/violations once every exchange sent so far has its verdict (the proxy
    answers at once and says how many are still pending)."""
    deadline = time.monotonic() + 120
    while True:
        found = httpx.get(url + "/__proxy/violations", timeout=30).json()
        if found["pending"] == 0 or time.monotonic() > deadline:
            return found
        time.sleep(0.05)

