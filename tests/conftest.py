"""Shared fixtures: an in-process app with a manual clock, and the real mock process.

`make test` runs the suite on pytest-xdist workers (`-n auto --dist loadscope`): each module
(or test class) runs whole on one worker, so its module-scoped fixtures start once; session
fixtures (the live mocks, Redis) start once per worker.
"""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from layers_kit.mock.config import Config
from layers_kit.mock.web.app import build_service, create_app
from tests.support.process import MockProcess, start_mock
from tests.support.redis_server import RedisServer


@pytest.fixture
def app():
    """A fresh in-process mock: memory store, manual clock, 1-second stages, responses validated."""
    return create_app(Config(clock="manual", stage_seconds=1.0, validate_responses=True))


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app, base_url="http://127.0.0.1", headers={"X-Api-Key": "lp_test_full"}) as c:
        yield c


@pytest.fixture
def service():
    return build_service(Config(clock="manual", stage_seconds=1.0))


@pytest.fixture(scope="session")
def live_mocks(request, tmp_path_factory):
    """Real layers-mock processes by store, started on first use, stopped at the end.

    Manual clock and validated responses: the end-to-end suite moves time itself.
    """
    started: dict[str, MockProcess] = {}

    def get(store: str) -> MockProcess:
        if store not in started:
            url = {"memory": "memory",
                   "sqlite": f"sqlite:///{tmp_path_factory.mktemp('e2e')}/mock.db"}.get(store)
            if store == "redis":
                server = request.getfixturevalue("redis_server")
                server.flush(12)
                url = server.db_url(12)
            started[store] = start_mock("--store", url, "--clock", "manual",
                                        "--stage-seconds", "1", "--validate-responses",
                                        "--reset")
        return started[store]

    yield get
    for mp in started.values():
        assert mp.stop() == 0, "".join(mp.output)


def _reset(mp: MockProcess) -> MockProcess:
    with mp.client(None) as c:
        assert c.post("/__mock/reset", json={}).status_code == 200
    return mp


@pytest.fixture
def live(live_mocks) -> MockProcess:
    """The live mock (memory store), reset to its fixtures before the test."""
    return _reset(live_mocks("memory"))


@pytest.fixture(params=["memory", "sqlite", "redis"])
def live_any_store(request, live_mocks) -> MockProcess:
    """The live mock over each store in turn, reset before the test (D9: same tests, any store)."""
    return _reset(live_mocks(request.param))


@pytest.fixture(scope="session")
def redis_server():
    """A real Redis: CI's (LAYERS_TEST_REDIS_URL) or one started for the session.

    Under pytest-xdist only the first worker uses CI's; every other worker starts its own, as
    the tests flush fixed database numbers.
    """
    server = RedisServer(shared=os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0")
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On a pytest-xdist worker, the `slow` tests first (a stable sort: the order within a
    module stays).

    `make test` hands out whole modules (and classes) in collection order (`--dist loadscope
    --no-loadscope-reorder`), so that a module-scoped fixture starts once; the longest units
    (the kit's broken variants, the wheel install, the shared stores) must start first, or one
    of them starting last would set the suite's wall time alone.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own (a test may pause it: never CI's shared one), without
    persistence: (its URL, its process)."""
    import shutil
    import signal
    import socket
    import subprocess
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url, proc
    os.kill(proc.pid, signal.SIGCONT)
    proc.terminate()
    proc.wait(10)
