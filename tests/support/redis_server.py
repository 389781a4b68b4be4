"""A real Redis for the store tests: the one CI started (LAYERS_TEST_REDIS_URL), or our own.

Under pytest-xdist only one worker may use CI's Redis (`shared=True`): the tests flush fixed
database numbers, so two workers on one server would flush each other's data mid-test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, shared: bool = True) -> None:
        """`shared`: use CI's Redis when LAYERS_TEST_REDIS_URL names one; else start our own."""
        self.proc: subprocess.Popen | None = None
        self.url = os.environ.get("LAYERS_TEST_REDIS_URL", "") if shared else ""
        if self.url:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make system-deps` "
                               "(apt-get install redis-server)")
        port = _free_port()
        self._dir = tempfile.mkdtemp(prefix="layers-redis-")
        self.proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", self._dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def db_url(self, db: int) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{db}"

    def flush(self, db: int) -> None:
        redis.Redis.from_url(self.db_url(db)).flushdb()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            shutil.rmtree(self._dir, ignore_errors=True)
