"""Start the real `layers-mock` as a separate process on a free loopback port.

The port is chosen by the mock itself (--port 0) and read from its banner, so two test runs
never race for a port. Stopped by its process id, with SIGTERM and then SIGKILL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx

_URL = re.compile(r"listening on (http://\S+)")


@dataclass
class MockProcess:
    proc: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, key: str | None = "lp_test_full", **kw) -> httpx.Client:
        headers = {"X-Api-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (workers too): a crash, not a shutdown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_mock(*args: str, timeout: float = 20) -> MockProcess:
    cmd = [sys.executable, "-m", "mock", "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for line in proc.stdout:  # keep draining so the pipe never fills
            lines.append(line)
            m = _URL.search(line)
            if m and not found:
                found.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError("layers-mock did not start:\n" + "".join(lines))
    mp = MockProcess(proc, found[0], lines)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # with workers, wait until one answers
        try:
            httpx.get(mp.url + "/openapi.yaml", timeout=2)
            return mp
        except httpx.TransportError:
            time.sleep(0.05)
    mp.kill()
    raise RuntimeError("layers-mock printed its address but does not answer")
