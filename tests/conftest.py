"""Shared fixtures: an in-process app with a manual clock, and the real mock process."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mock.web.app import Config, build_service, create_app
from tests.support.process import MockProcess, start_mock
from tests.support.redis_server import RedisServer


@pytest.fixture
def app():
    """A fresh in-process mock: memory store, manual clock, 1-second stages, responses validated."""
    return create_app(Config(clock="manual", stage_seconds=1.0, validate_responses=True))


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app, headers={"X-Api-Key": "lp_test_full"}) as c:
        yield c


@pytest.fixture
def service():
    return build_service(Config(clock="manual", stage_seconds=1.0))


@pytest.fixture(scope="session")
def live_mock() -> MockProcess:
    """One real layers-mock process for the end-to-end suite (manual clock, validated responses)."""
    mp = start_mock("--clock", "manual", "--stage-seconds", "1", "--validate-responses")
    yield mp
    assert mp.stop() == 0, "".join(mp.output)


@pytest.fixture
def live(live_mock: MockProcess):
    """The live mock, reset to its fixtures before the test."""
    with live_mock.client(None) as c:
        assert c.post("/__mock/reset").status_code == 200
    return live_mock


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    yield server
    server.stop()
