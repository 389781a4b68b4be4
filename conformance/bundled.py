"""`--mock`: start the bundled layers-mock on a free loopback port and describe it as a Target.

The mock is a separate process (as any target is); its fixtures say which keys and ids unlock
which checks, so nothing here is tuned to the mock's behaviour.
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

from conformance.target import Target

_URL = re.compile(r"listening on (http://\S+)")
# Stages long enough that steady polling (target_for's poll_interval) sees each one.
MOCK_ARGS = ("--stage-seconds", "0.1")
ALL_SCOPES = {"content:read", "content:write", "content:approve", "jobs:read", "jobs:cancel",
              "publish:read", "publish:write"}


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


def start_mock(*args: str, module: str = "mock", timeout: float = 30) -> RunningMock:
    """Run `python -m <module> --port 0 ...` and wait until it answers HTTP."""
    cmd = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args]
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
        raise RuntimeError("the mock did not start:\n" + "".join(lines))
    mock = RunningMock(proc, found[0], lines, reader)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # with several workers, wait until one answers
        try:
            httpx.get(mock.url + "/openapi.yaml", timeout=2)
            return mock
        except httpx.TransportError:
            time.sleep(0.05)
    mock.stop(signal.SIGKILL)
    raise RuntimeError("the mock printed its address but does not answer")


def target_for(url: str, **overrides) -> Target:
    """A Target using every key and id the bundled fixtures offer."""
    from mock.domain.fixtures import load

    fx = load().data
    credits = {o["id"]: o["credits"] for o in fx["orgs"]}
    full = [k for k in fx["keys"] if set(k["scopes"]) >= ALL_SCOPES]
    main = next(k for k in full if credits[k["org"]] > 0)
    readonly = next((k for k in fx["keys"] if k["org"] == main["org"]
                     and "content:write" not in k["scopes"]), None)
    other = next((k for k in full if k["org"] != main["org"] and credits[k["org"]] > 0), None)
    broke = next((k for k in full if credits[k["org"]] == 0), None)
    projects = fx["projects"]
    project = next(p for p in projects if p["org"] == main["org"]
                   and p.get("policy", "auto_approve") == "auto_approve")
    other_project = next((p for p in projects if other and p["org"] == other["org"]), None)
    broke_project_ids = {p["id"] for p in projects if broke and p["org"] == broke["org"]}
    broke_container = next((c for c in fx.get("containers") or []
                            if c["project"] in broke_project_ids), None)
    terms = (fx.get("moderation") or {}).get("terms") or ["moderation-test-block"]
    values = dict(
        base_url=url, api_key=main["key"], readonly_key=readonly and readonly["key"],
        other_org_key=other and other["key"],
        other_project_id=other_project and other_project["id"],
        broke_key=broke and broke["key"],
        broke_container_id=broke_container and broke_container["id"],
        moderation_text=f"A brief that mentions {terms[0]}", project_id=project["id"],
        job_timeout=60.0, poll_interval=0.02,
    )
    values.update(overrides)
    return Target(**values)
