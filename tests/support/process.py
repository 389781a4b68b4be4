"""The real `layers-mock` as a separate process on a free loopback port (via mock.launcher).

The port is chosen by the mock itself (--port 0) and read from its banner, so runs never race
for a port. Stopped by its process id: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from layers_kit.mock.launcher import RunningMock
from layers_kit.mock.launcher import start_mock as _start


class MockProcess(RunningMock):
    def client(self, key: str | None = "lp_test_full", **kw) -> httpx.Client:
        headers = {"X-Api-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def kill(self) -> None:
        """SIGKILL the whole process group (workers too): a crash, not a shutdown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_mock(*args: str, module: str = "layers_kit.mock") -> MockProcess:
    running = _start(*args, module=module)
    return MockProcess(running.proc, running.url, running.output, running.reader)


def run_kit(*args: str, timeout: float = 300, cwd: Path | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """`layers-conformance run ARGS` as a user runs it: a process of its own, output captured;
    `env` is added to this process's environment."""
    return subprocess.run([sys.executable, "-m", "layers_kit.conformance", "run", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd()), **(env or {})})
