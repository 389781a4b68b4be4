"""Durable, shared state (D9 stores): two workers over SQLite and over Redis, and crash safety.

Everything here runs the real layers-mock with `--workers 2` (or one, for the crash) on
loopback and reads the shared store directly to count charges.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from layers_kit.mock.store.base import open_store
from tests.support import ids
from tests.support.process import start_mock

REGEN = "/v1/content/{}/regenerate"
DEMO = "org_00000000-0000-4000-8000-00000000000a"
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    server = request.getfixturevalue("redis_server")
    server.flush(9)
    return server.db_url(9)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def busy_mock_started(request, tmp_path_factory):
    """A two-worker mock whose jobs never end (3600-s stages) over each shared store, started
    once for the tests below that only start jobs (each resets it first): a two-worker start
    costs about 3.5 s of CPU. Its own database, apart from `store_url`'s."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('busy')}/shared.db"
    else:
        server = request.getfixturevalue("redis_server")
        server.flush(10)
        url = server.db_url(10)
    mock = start_mock("--store", url, "--workers", "2", "--stage-seconds", "3600", "--reset")
    yield mock, url
    assert mock.stop() == 0


@pytest.fixture
def busy_mock(busy_mock_started):
    """`busy_mock_started`, reset to its fixtures (POST /__mock/reset) before the test."""
    mock, url = busy_mock_started
    with httpx.Client(base_url=mock.url, timeout=30) as c:
        assert c.post("/__mock/reset", json={}).status_code == 200
    return mock, url


def credits(store_url: str) -> dict:
    store = open_store(store_url)
    try:
        return store.atomic(lambda tx: tx.get("org", DEMO))
    finally:
        store.close()


def fresh_connections(url: str, **kw) -> httpx.Client:
    """One client (thread-safe) whose every request opens a new connection, so that requests
    land on either worker; building a client per request cost more than the request."""
    return httpx.Client(base_url=url, timeout=30, **kw,
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=0))


def post_many(url: str, n: int, headers: dict, body: dict | None = None) -> list[httpx.Response]:
    with fresh_connections(url) as c:
        def send(_):
            return c.post(REGEN.format(ids.CNT_NOT_REQUIRED), headers=headers,
                          json=body or {"brief": {"cta": "Fifty at once"}})

        with cf.ThreadPoolExecutor(n) as pool:
            return list(pool.map(send, range(n)))


def test_two_workers_50_identical_requests_one_job_one_charge(busy_mock):
    mock, store_url = busy_mock
    before = credits(store_url)
    key = {"X-Api-Key": ids.FULL, "Idempotency-Key": str(uuid.uuid4())}
    responses = post_many(mock.url, 50, key)
    accepted = [r for r in responses if r.status_code == 202]
    others = Counter(r.json()["error"]["code"] for r in responses if r.status_code != 202)
    assert set(others) <= {"IDEMPOTENCY_IN_PROGRESS"}, others
    assert len({r.json()["jobId"] for r in accepted}) == 1
    assert len({r.content for r in accepted}) == 1
    fresh = [r for r in accepted if "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    after = credits(store_url)
    assert before["available"] - after["available"] == 120  # one charge (reserved)
    assert after["reserved"] - before["reserved"] == 120


def test_two_workers_50_regenerates_without_keys_one_wins(busy_mock):
    mock, store_url = busy_mock
    before = credits(store_url)
    responses = post_many(mock.url, 50, {"X-Api-Key": ids.FULL})
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {202: 1, 409: 49}
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == \
        {"CONFLICT"}
    assert before["available"] - credits(store_url)["available"] == 120


def test_two_workers_regenerating_fresh_containers_never_see_a_finished_job_as_running(
        store_url):
    """Regenerates of containers whose generation job just ended, spread over two workers:
    every one is accepted (no stale R10 conflict from a half-seen transaction)."""
    mock = start_mock("--store", store_url, "--workers", "2", "--stage-seconds", "0.002",
                      "--reset")
    try:
        with fresh_connections(mock.url, headers={"X-Api-Key": ids.FULL}) as c:
            def generate(_) -> list[str]:
                r = c.post(f"/v1/projects/{ids.PRJ_AUTO}/content",
                           json={"variantCount": 5, "brief": {"topic": "Race"}})
                return r.json()["containerIds"]

            with cf.ThreadPoolExecutor(8) as pool_exec:
                pool = [cid for ids_ in pool_exec.map(generate, range(40)) for cid in ids_]
            time.sleep(0.2)  # real time on purpose: the 10-ms jobs must have ended by the clock

            def regenerate(cid: str) -> int:
                return c.post(REGEN.format(cid), json={}).status_code

            with cf.ThreadPoolExecutor(16) as pool_exec:
                statuses = Counter(pool_exec.map(regenerate, pool))
        assert statuses == {202: len(pool)}
    finally:
        assert mock.stop() == 0


def test_two_workers_share_state_and_the_clock(store_url):
    mock = start_mock("--store", store_url, "--workers", "2", "--clock", "manual",
                      "--stage-seconds", "1", "--reset")
    try:
        with fresh_connections(mock.url, headers={"X-Api-Key": ids.FULL}) as c:
            job = c.post(REGEN.format(ids.CNT_NOT_REQUIRED)).json()
            # Fresh connections land on either worker: every read sees the job.
            for _ in range(20):
                assert c.get(job["locationUrl"]).json()["stage"] == "queued"
            assert c.post("/__mock/clock/advance", json={"seconds": 6}).status_code == 200
            for _ in range(10):
                assert c.get(job["locationUrl"]).json()["status"] == "completed"
    finally:
        assert mock.stop() == 0


def test_workers_are_refused_with_the_memory_store():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "layers_kit.mock", "--workers", "2", "--port", "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "shared store" in out.stderr


def test_sigkill_during_load_loses_nothing_acknowledged(store_url):
    """Every 202 a client got still has its job after a crash, and its key still replays."""
    mock = start_mock("--store", store_url, "--workers", "2", "--stage-seconds", "3600",
                      "--reset")
    acknowledged: list[tuple[str, dict, str, bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()  # enough 202s acknowledged to mean something: kill now

    def load(worker: int) -> None:
        with httpx.Client(base_url=mock.url, headers={"X-Api-Key": ids.FULL}, timeout=5) as c:
            for i in range(1000):  # bounded; the kill ends it much sooner
                if stop.is_set():
                    return
                key = f"crash-{worker}-{i}-{uuid.uuid4()}"
                body = {"format": "slideshow_remix", "brief": {"topic": f"Load {key}"}}
                try:
                    r = c.post(f"/v1/projects/{ids.PRJ_AUTO}/content", json=body,
                               headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    return
                if r.status_code == 202:
                    with lock:
                        acknowledged.append((key, body, r.json()["jobId"], r.content))
                        if len(acknowledged) >= 30:
                            enough.set()

    threads = [threading.Thread(target=load, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    assert enough.wait(60), "the load did not get going"
    mock.kill()  # SIGKILL the parent and its workers, mid-load
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acknowledged) > 20, "the load did not run long enough to mean anything"
    restarted = start_mock("--store", store_url, "--workers", "2", "--stage-seconds", "3600")
    try:
        with httpx.Client(base_url=restarted.url, headers={"X-Api-Key": ids.FULL}) as c:
            for key, body, job_id, first in acknowledged:
                assert c.get(f"/v1/jobs/{job_id}").status_code == 200, job_id
                replay = c.post(f"/v1/projects/{ids.PRJ_AUTO}/content", json=body,
                                headers={"Idempotency-Key": key})
                assert replay.status_code == 202 and replay.content == first, key
                assert replay.headers["idempotent-replayed"] == "true"
    finally:
        assert restarted.stop() == 0
