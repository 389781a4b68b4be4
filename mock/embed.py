"""`mock.serve`: the real mock as a context manager, for partners' own tests without pytest.

    from layers_kit.mock import serve

    with serve(clock="manual") as m:
        ...                       # call m.url with m.keys["full"]
        m.advance(5)              # a job's 5 stages pass
        m.requests(operationId="getJob")
        m.chaos(0.2, seed=7)      # seeded 429, 503, latency and dropped connections
        m.assert_client_behaves() # the client rules C1-C6, judged from the journal

It runs `layers-mock` as a child process on a free loopback port (`mock.launcher`), so a
client under test meets exactly what it will meet over HTTP, and it drives the mock only
through its documented control API (`/__mock/`). The `layers_mock` pytest fixture is this
object, one per test session. Standard library only: importing it costs nothing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from layers_kit.mock.launcher import RunningMock, start_mock

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MockControlError(RuntimeError):
    """The control API refused a call (its status and D5 error body are kept)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"the mock's control API answered {status}: {body}")


def _test_keys(fixtures: Path | str | None) -> dict[str, str]:
    """The fixture keys by short name: `lp_test_full` is `full`."""
    from layers_kit.mock.domain.fixtures import load  # yaml, only when a mock is started

    return {k["key"].removeprefix("lp_test_"): k["key"] for k in load(fixtures).keys}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class MockServer:
    """A running mock: where it is, its test keys, and its control API as methods."""

    def __init__(self, process: RunningMock, keys: dict[str, str]) -> None:
        self._process = process
        self.url: str = process.url
        self.keys: dict[str, str] = keys

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def output(self) -> str:
        """What the mock printed so far (its banner, and warnings if any)."""
        return "".join(self._process.output)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                detail = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            raise MockControlError(exc.code, detail) from None

    def reset(self) -> None:
        """Back to the fixtures: state, journal, faults and the manual clock."""
        self._call("POST", "/__mock/reset")

    def advance(self, seconds: float) -> str:
        """Move the manual clock forward; the mock's new time (ISO 8601)."""
        return self._call("POST", "/__mock/clock/advance", {"seconds": seconds})["now"]

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The journal, newest first; filters are the control API's (`operationId`, `limit`).

        Snake case works too: `requests(operation_id="getJob")`.
        """
        query = urllib.parse.urlencode({_camel(k): v for k, v in filters.items()})
        return self._call("GET", "/__mock/requests" + (f"?{query}" if query else ""))["requests"]

    def fault(self, **spec: Any) -> dict[str, Any]:
        """Arm a fault, as `POST /__mock/faults` takes it; the armed fault.

        `fault(match={"operationId": "getJob"}, status=503, count=1)`.
        """
        return self._call("POST", "/__mock/faults", spec)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._call("DELETE", "/__mock/faults")

    def chaos(self, rate: float, *, seed: int = 0, kinds: Sequence[str] | None = None,
              operations: Sequence[str] | None = None, latency_ms: int = 500) -> dict[str, Any]:
        """Answer a seeded share of the API's requests with chaos until `clear_chaos()` or
        `reset()`: 429 and 503 (with Retry-After), added latency, dropped connections (after
        the operation ran: a retry with the same Idempotency-Key gets its first answer).

        `chaos(0.3, seed=7, kinds=["503", "drop"], operations=["regenerateContent"])`.
        """
        body: dict[str, Any] = {"rate": rate, "seed": seed, "latencyMs": latency_ms}
        if kinds is not None:
            body["kinds"] = list(kinds)
        if operations is not None:
            body["operations"] = list(operations)
        return self._call("POST", "/__mock/chaos", body)

    def clear_chaos(self) -> None:
        """No chaos."""
        self._call("DELETE", "/__mock/chaos")

    def client_report(self, client: str | None = None) -> dict[str, Any]:
        """How each client behaved since the last reset, judged by the contract's client
        rules C1-C6: `{"clients": [{"client", "passed", "rules": [...]}], ...}`. A client is
        its X-Client-Id header, else its API key."""
        query = "?" + urllib.parse.urlencode({"client": client}) if client else ""
        return self._call("GET", "/__mock/client-report" + query)

    def assert_client_behaves(self, client: str | None = None,
                              rules: Sequence[str] | None = None) -> None:
        """Fail (AssertionError) naming each broken client rule and the exchanges that show it;
        `rules` limits the judgement to those ids (e.g. ["C1", "C3"])."""
        from layers_kit.mock.web.client_report import failures

        found = failures(self.client_report(client), rules)
        if found:
            raise AssertionError("the client broke the contract's client rules:\n"
                                 + "\n".join(found))

    def stop(self) -> int:
        """Stop the process (SIGTERM, then SIGKILL); its exit code. Stopping twice is harmless."""
        return self._process.stop()

    def __repr__(self) -> str:
        return f"<MockServer {self.url} pid={self.pid}>"


@contextmanager
def serve(*, clock: str = "manual", stage_seconds: float = 1.0, store: str = "memory",
          fixtures: Path | str | None = None, args: Sequence[str] = (),
          timeout: float = 30) -> Iterator[MockServer]:
    """Run `layers-mock` on a free loopback port for the duration of the `with` block.

    The defaults suit tests: a manual clock (time moves only through `advance`), 1-second
    stages (a job takes 5 s of mock time) and the memory store. `args` passes any other
    `layers-mock` flag, e.g. `("--validate-responses",)`.
    """
    keys = _test_keys(fixtures)
    cmd = ["--clock", clock, "--stage-seconds", f"{stage_seconds:g}", "--store", store,
           "--client-report", *args]
    if fixtures is not None:
        cmd += ["--fixtures", str(fixtures)]
    server = MockServer(start_mock(*cmd, timeout=timeout), keys)
    try:
        yield server
    finally:
        server.stop()
