"""Rate limits (D13): token buckets per key and class, on the manual clock (no wall-clock waits).

The domain alone first, then over HTTP in process, then across two worker processes sharing a
SQLite store.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from starlette.testclient import TestClient

from layers_kit.mock.cli import main as mock_main
from layers_kit.mock.config import Config
from layers_kit.mock.domain import fixtures, ratelimit
from layers_kit.mock.domain.ratelimit import RateLimited, Tier
from layers_kit.mock.store.memory import MemoryStore
from layers_kit.mock.web.app import create_app
from tests.support import ids
from tests.support.process import start_mock

LIMITED = "lp_test_limited"
STANDARD = Tier("standard", {"read": 120, "light_write": 60, "job_start": 20})
REGEN = f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"
READ = f"/v1/content/{ids.CNT_NOT_REQUIRED}"


# ---- the domain ---------------------------------------------------------------------------

def _take(store, t: float, cls: str = "job_start") -> int | None:
    """None when granted, else the Retry-After seconds."""
    return store.atomic(lambda tx: ratelimit.take(tx, "key_x", cls, STANDARD, t))


def test_the_refusal_is_the_d5_429_with_retry_after():
    err = RateLimited("job_start", 3)
    assert (err.status, err.code, err.headers) == (429, "RATE_LIMITED", {"Retry-After": "3"})


def test_a_full_bucket_allows_the_burst_then_says_when_a_token_is_back():
    store = MemoryStore(journal_size=10)
    assert [_take(store, 1000.0) for _ in range(20)] == [None] * 20  # 20 per minute: the burst
    assert _take(store, 1000.0) == 3  # one token every 3 s
    assert _take(store, 1000.0) == 3  # a refused request costs nothing
    assert _take(store, 1001.5) == 2  # 1.5 s later half a token is back: 1.5 s, rounded up
    assert _take(store, 1003.0) is None  # refilled continuously: exactly 3 s later, a token
    assert _take(store, 1003.0) == 3


def test_refill_never_exceeds_the_limit_and_classes_are_apart():
    store = MemoryStore(journal_size=10)
    assert _take(store, 0.0) is None
    grants = [_take(store, 10_000.0) for _ in range(21)]  # hours idle: still 20 at most
    assert grants.count(None) == 20
    assert _take(store, 10_000.0, "read") is None  # another class, another bucket


def test_a_clock_that_goes_back_adds_no_tokens():
    store = MemoryStore(journal_size=10)
    for _ in range(20):
        _take(store, 500.0)
    assert _take(store, 100.0) == 3  # manual clock reset to an earlier time: still empty


def test_a_keys_own_tier_wins_over_the_setting():
    tiers = {"standard": STANDARD}
    assert ratelimit.tier_for("standard", "off", tiers) is STANDARD
    assert ratelimit.tier_for(None, "off", tiers) is None
    assert ratelimit.tier_for(None, "standard", tiers) is STANDARD


# ---- over HTTP, in process ----------------------------------------------------------------

@pytest.fixture
def http():
    def make(**config) -> TestClient:
        return TestClient(create_app(Config(clock="manual", stage_seconds=1.0, **config)))
    return make


def _advance(c: TestClient, seconds: float) -> None:
    assert c.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def _exhaust_job_start(c: TestClient, key: str = LIMITED) -> None:
    for _ in range(20):  # preserveAssets on a completed container: cheap, and busy after one
        assert c.post(REGEN, headers={"X-Api-Key": key}, json={}).status_code != 429


def test_the_limited_key_meets_a_429_in_the_d5_envelope(http):
    with http() as c:
        _exhaust_job_start(c)
        r = c.post(REGEN, headers={"X-Api-Key": LIMITED}, json={})
        assert r.status_code == 429
        err = r.json()["error"]
        assert err["code"] == "RATE_LIMITED" and err["requestId"] == r.headers["x-request-id"]
        assert "job_start" in err["message"]
        assert r.headers["retry-after"] == "3"
        assert r.headers["x-ratelimit-endpoint-class"] == "job_start"
        # other classes keep their own buckets; other keys are not limited by default
        assert c.get(READ, headers={"X-Api-Key": LIMITED}).status_code == 200
        assert c.post(REGEN, headers={"X-Api-Key": ids.FULL}, json={}).status_code == 409
        _advance(c, 3)  # the manual clock refills the bucket
        assert c.post(REGEN, headers={"X-Api-Key": LIMITED}, json={}).status_code == 409


def test_reads_have_their_own_limit(http):
    with http() as c:
        statuses = [c.get(READ, headers={"X-Api-Key": LIMITED}).status_code for _ in range(121)]
        assert statuses[:120] == [200] * 120 and statuses[120] == 429
        assert c.get(READ, headers={"X-Api-Key": LIMITED}).headers["retry-after"] == "1"


def test_after_authentication_before_validation(http):
    with http() as c:
        _exhaust_job_start(c)
        assert c.post(REGEN, headers={"X-Api-Key": "lp_test_nope"}, json={}).status_code == 401
        bad = c.post(REGEN, headers={"X-Api-Key": LIMITED}, json={"brief": {"topic": 5}})
        assert bad.status_code == 429  # the shape is not looked at once the bucket is empty


def test_a_429_is_never_stored_for_idempotency(http):
    with http() as c:
        _exhaust_job_start(c)
        key = {"X-Api-Key": LIMITED, "Idempotency-Key": str(uuid.uuid4())}
        body = {"brief": {"topic": "After the backoff"}}
        cid = ids.CNT_APPROVED_SCHEDULED
        path = f"/v1/content/{cid}/regenerate"
        assert c.post(path, headers=key, json=body).status_code == 429
        _advance(c, 3)
        first = c.post(path, headers=key, json=body)
        assert first.status_code == 202 and "idempotent-replayed" not in first.headers
        _advance(c, 3)
        again = c.post(path, headers=key, json=body)
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["jobId"] == first.json()["jobId"]


def test_rate_limits_standard_applies_to_every_key_and_reset_refills(http):
    with http(rate_limits="standard") as c:
        _exhaust_job_start(c, ids.FULL)
        assert c.post(REGEN, headers={"X-Api-Key": ids.FULL}, json={}).status_code == 429
        assert c.post("/__mock/reset", json={}).status_code == 200
        assert c.post(REGEN, headers={"X-Api-Key": ids.FULL}, json={}).status_code == 202


def test_rate_limits_off_by_default_for_the_other_keys(http):
    with http() as c:
        statuses = {c.post(REGEN, headers={"X-Api-Key": ids.FULL}, json={}).status_code
                    for _ in range(30)}
        assert 429 not in statuses


def test_tiers_come_from_the_fixtures_and_are_checked_at_start(tmp_path, capsys):
    data = yaml.safe_load(fixtures.DEFAULT_PATH.read_text())
    data["rateLimits"] = {"tiers": {"gold": {"read": 1000}}}
    data["keys"][-1]["rateLimitTier"] = "gold"
    ok = tmp_path / "gold.yaml"
    ok.write_text(yaml.safe_dump(data))
    assert ratelimit.tiers(fixtures.load(ok).data)["gold"].per_minute == {"read": 1000}
    assert mock_main(["--port", "0", "--fixtures", str(ok), "--rate-limits", "standard"]) == 2
    assert "no such tier" in capsys.readouterr().err
    data["keys"][-1]["rateLimitTier"] = "platinum"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(fixtures.FixtureError, match="unknown rateLimitTier"):
        fixtures.load(bad)


# ---- across worker processes --------------------------------------------------------------

@pytest.mark.e2e
def test_buckets_are_shared_by_workers_through_the_store(tmp_path):
    mock = start_mock("--store", f"sqlite:///{tmp_path}/mock.db", "--workers", "2",
                      "--clock", "manual", "--reset")
    try:
        with mock.client(LIMITED) as c, ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda _: c.post(REGEN, json={}).status_code, range(30)))
            assert statuses.count(429) == 10, statuses  # 20 tokens in all, not 20 per worker
            limited = c.post(REGEN, json={})
            assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
            assert c.post("/__mock/clock/advance", json={"seconds": 3}).status_code == 200
            assert c.post(REGEN, json={}).status_code != 429
            assert c.post(REGEN, json={}).status_code == 429
    finally:
        assert mock.stop() == 0
