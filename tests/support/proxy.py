"""The validating proxy and its test servers as separate processes on free loopback ports.

Each prints `listening on http://...`; it is read from the output, so runs never race for a
port. Stopped by process id (SIGTERM, then SIGKILL), as every server in the tests is.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from mock.launcher import RunningMock

_URL = re.compile(r"listening on (http://\S+)")


def start(cmd: list[str], timeout: float = 30) -> RunningMock:
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

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        proc.wait(10)
        raise RuntimeError(f"{cmd} did not start:\n" + "".join(lines))
    return RunningMock(proc, found[0], lines, reader)


def start_proxy(target: str, *args: str) -> RunningMock:
    """`layers-conformance proxy --target TARGET --listen 127.0.0.1:0 ARGS`."""
    return start([sys.executable, "-m", "conformance", "proxy", "--target", target,
                  "--listen", "127.0.0.1:0", *args])


def start_broken_target() -> RunningMock:
    """The tiny server of tests/broken/proxy_targets.py."""
    return start([sys.executable, "-m", "tests.broken.proxy_targets", "--port", "0"])
