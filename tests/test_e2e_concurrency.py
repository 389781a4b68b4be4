"""D6 under concurrency, against the real layers-mock process (memory store, one worker)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import uuid

import httpx
import pytest

from tests.support import ids

REGEN = "/v1/content/{}/regenerate"
pytestmark = pytest.mark.e2e


def concurrent_client(url: str) -> httpx.Client:
    """One thread-safe client with a connection per concurrent request (a client per thread
    cost more than the requests)."""
    return httpx.Client(base_url=url, timeout=20, limits=httpx.Limits(max_connections=32))


def test_d6_in_flight_duplicate_is_in_progress(live_any_store):
    live = live_any_store
    key = {"X-Api-Key": ids.FULL, "Idempotency-Key": str(uuid.uuid4())}
    results: dict[str, httpx.Response] = {}
    sent = threading.Event()

    def trace(event: str, info: dict) -> None:
        if event == "http11.send_request_body.complete":
            sent.set()

    def slow() -> None:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            results["first"] = c.post(REGEN.format(ids.CNT_NOT_REQUIRED),
                                      headers={**key, "Prefer": "latency=1500"},
                                      extensions={"trace": trace})

    t = threading.Thread(target=slow)
    t.start()
    # A barrier, not a guess: the first request is on the wire (the server reads requests
    # in order and claims the key before its 1.5 s latency) when the second is sent.
    assert sent.wait(10)
    with httpx.Client(base_url=live.url, timeout=30) as c:
        second = c.post(REGEN.format(ids.CNT_NOT_REQUIRED), headers=key)
        t.join()
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
        assert second.headers["retry-after"] == "1"
        assert results["first"].status_code == 202
        third = c.post(REGEN.format(ids.CNT_NOT_REQUIRED), headers=key)
        assert third.status_code == 202 and third.content == results["first"].content


def test_d6_twenty_concurrent_duplicates_make_one_job(live_any_store):
    live = live_any_store
    key = {"X-Api-Key": ids.FULL, "Idempotency-Key": str(uuid.uuid4())}
    body = {"brief": {"topic": "Twenty at once"}}

    with concurrent_client(live.url) as c, cf.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(
            lambda _: c.post(REGEN.format(ids.CNT_NOT_REQUIRED), headers=key, json=body),
            range(20)))
    ok = [r for r in responses if r.status_code == 202]
    assert ok, [r.text for r in responses]
    assert len({r.json()["jobId"] for r in ok}) == 1
    for r in responses:
        assert r.status_code == 202 or r.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    journal = httpx.get(live.url + "/__mock/requests?limit=50").json()["requests"]
    fresh = [e for e in journal if e["operationId"] == "regenerateContent"
             and e["status"] == 202 and not e["replayed"]]
    assert len(fresh) == 1


def test_r10_concurrent_regenerates_without_keys_one_wins(live_any_store):
    live = live_any_store
    with concurrent_client(live.url) as c, cf.ThreadPoolExecutor(20) as pool:
        statuses = sorted(r.status_code for r in pool.map(
            lambda _: c.post(REGEN.format(ids.CNT_NOT_REQUIRED),
                             headers={"X-Api-Key": ids.FULL}), range(20)))
    assert statuses == [202] + [409] * 19
