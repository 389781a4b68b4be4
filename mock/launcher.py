"""Start the real `layers-mock` as a child process on a free loopback port, and stop it by pid.

One launcher for everything that runs the mock from Python: `mock.serve`, the `layers_mock`
pytest fixture, `layers-conformance run --mock` and the project's own end-to-end tests.
The mock picks its port itself (`--port 0`) and prints it, so launches never race for a port.
Only the standard library is used here, so `import mock` and the pytest plugin stay cheap.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_URL = re.compile(r"listening on (http://\S+)")
# Loopback never goes through a proxy, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class RunningMock:
    proc: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signal the process group (workers too), SIGKILL it if it lingers; the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        if self.reader is not None:
            self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def _answers(url: str) -> bool:
    try:
        with _OPENER.open(url + "/openapi.yaml", timeout=2) as response:
            response.read()
        return True
    except urllib.error.HTTPError:
        return True  # it answered HTTP, whatever the status
    except OSError:
        return False


def start_process(cmd: Sequence[str], *, timeout: float = 30, cwd: Path | str | None = None,
                  env: Mapping[str, str] | None = None, what: str = "the process") -> RunningMock:
    """Start a server that prints `listening on http://...`, and wait for that line.

    Its output is drained on a thread so the pipe never fills; it runs in a session of its own
    so that stopping it stops its workers too. Shared by the mock, the proxy and test servers.
    """
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, cwd=cwd, env=env)
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

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if not ready.wait(timeout) or not found:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        reader.join(5)
        raise RuntimeError(f"{what} did not start:\n" + "".join(lines))
    return RunningMock(proc, found[0], lines, reader)


def start_mock(*args: str, module: str = "layers_kit.mock", timeout: float = 30,
               command: Sequence[str] | None = None, cwd: Path | str | None = None,
               env: Mapping[str, str] | None = None) -> RunningMock:
    """Run `python -m <module> --host 127.0.0.1 --port 0 ...` and wait until it answers HTTP.

    `command` replaces `python -m <module>` (e.g. an installed `layers-mock` script).
    """
    program = list(command) if command else [sys.executable, "-m", module]
    cmd = [*program, "--host", "127.0.0.1", "--port", "0", *args]
    mock = start_process(cmd, timeout=timeout, cwd=cwd, env=env, what="the mock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # with several workers, wait until one answers
        if _answers(mock.url):
            return mock
        time.sleep(0.05)
    mock.stop(signal.SIGKILL)
    raise RuntimeError("the mock printed its address but does not answer")
