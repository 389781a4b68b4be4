"""The mock grades a partner's client (D14): two clients of the regenerate workflow run against
the real mock under seeded chaos, a careful one and a careless one, and the client report
(from the journal, per X-Client-Id) passes the first and fails the second, naming each client
rule it broke with the exchanges that show it.

Client pacing is real time (a partner's client sleeps for real), so the careful client takes a
few seconds: the mock's stages are 1 s, its polls 1 s apart.
"""

from __future__ import annotations

import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from layers_kit.contract.behaviour import MIN_POLL_INTERVAL
from layers_kit.mock import serve
from layers_kit.mock.web.chaos import Chaos
from tests.support import ids

pytestmark = pytest.mark.e2e

REGEN = f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"
KINDS = ["503", "drop"]


def _seed() -> int:
    """A seed whose first two decisions on job starts are a drop and a 503: both clients meet
    a lost answer and a Retry-After at once."""
    for seed in range(10_000):
        chaos = Chaos(0.5, seed, tuple(KINDS))
        if chaos.decide(0) == "drop" and chaos.decide(1) == "503":
            return seed
    raise AssertionError("no such seed")


def careful(base: str) -> str:
    """Retries a job start with the same key, honours Retry-After, waits on the running job
    after a 409, polls once a second with If-None-Match, stops at the end."""
    with httpx.Client(base_url=base, timeout=10,
                      headers={"X-Api-Key": ids.FULL, "X-Client-Id": "careful"}) as c:
        key, delay = str(uuid.uuid4()), 0.2
        for _ in range(20):
            try:
                r = c.post(REGEN, json={"brief": {"cta": "Careful"}},
                           headers={"Idempotency-Key": key})
            except httpx.TransportError:  # no answer: the job may have started; same key
                time.sleep(delay)
                delay *= 2
                continue
            if r.status_code in (429, 503):
                time.sleep(float(r.headers.get("retry-after", 1)) + 0.05)
                continue
            if r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT":
                _follow(c, r.json()["error"]["details"]["jobId"])
                continue
            break
        assert r.status_code == 202, r.text
        return _follow(c, r.json()["jobId"])


def _follow(c: httpx.Client, job_id: str) -> str:
    etag = None
    while True:
        r = c.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag} if etag else {})
        if r.status_code == 200:
            etag = r.headers.get("etag")
            if r.json()["status"] != "running":
                return r.json()["status"]
        time.sleep(MIN_POLL_INTERVAL + 0.05)


def careless(base: str) -> None:
    """A new key on every retry, no backoff, an immediate retry after a 409, a key reused for
    another body, tight polling without If-None-Match, and a poll after the end."""
    with httpx.Client(base_url=base, timeout=10,
                      headers={"X-Api-Key": ids.FULL, "X-Client-Id": "careless"}) as c:
        accepted = None
        deadline = time.monotonic() + 30  # bounded: the running job ends within 5 s
        while time.monotonic() < deadline:
            try:
                r = c.post(REGEN, json={"brief": {"cta": "Careless"}},
                           headers={"Idempotency-Key": str(uuid.uuid4())})
            except httpx.TransportError:
                continue
            if r.status_code == 202:
                accepted = r.json()["jobId"]
                break
            time.sleep(0.02)  # a tight loop: 409s and 503s alike
        for note in ("Looks good", "Something else"):  # one key, two bodies
            c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/approve", json={"note": note},
                   headers={"Idempotency-Key": "reused-key"})
        assert accepted
        for _ in range(200):
            status = c.get(f"/v1/jobs/{accepted}").json()["status"]
            if status != "running":
                break
            time.sleep(0.05)
        c.get(f"/v1/jobs/{accepted}")  # once more, after the end


def _rules(report: dict, client: str) -> dict[str, dict]:
    (entry,) = [c for c in report["clients"] if c["client"] == client]
    return {r["rule"]: r for r in entry["rules"]}


def test_the_report_passes_a_careful_client_and_names_what_a_careless_one_broke():
    seed = _seed()
    with serve(clock="real", stage_seconds=1.0) as m:
        m.chaos(0.5, seed=seed, kinds=KINDS, operations=["regenerateContent"])
        assert careful(m.url) == "completed"
        m.chaos(0.5, seed=seed, kinds=KINDS, operations=["regenerateContent"])  # same faults
        careless(m.url)
        report = m.client_report()
        good, bad = _rules(report, "careful"), _rules(report, "careless")
        assert {r: v["verdict"] for r, v in good.items() if v["verdict"] == "failed"} == {}
        assert good["C1"]["verdict"] == "passed" and good["C3"]["verdict"] == "passed"
        assert good["C4"]["verdict"] == "passed"
        m.assert_client_behaves("careful")
        broken = {r for r, v in bad.items() if v["verdict"] == "failed"}
        assert {"C1", "C2", "C3", "C4", "C5", "C6"} <= broken, {
            r: (v["verdict"], v["occasions"]) for r, v in bad.items()}
        for rule in broken:
            first = bad[rule]["breaches"][0]
            assert first["exchanges"] and all(e["requestId"] for e in first["exchanges"])
        with pytest.raises(AssertionError) as failed:
            m.assert_client_behaves("careless", rules=["C1", "C4"])
        assert "C1 (" in str(failed.value) and "C4 (" in str(failed.value)
        assert "C5" not in str(failed.value)  # limited to the rules asked for
        junit = httpx.get(f"{m.url}/__mock/client-report", params={"format": "junit"}).text
        assert 'name="client careless"' in junit and "<failure" in junit
        m.reset()  # a reset clears the journal, so the report, and the chaos
        assert m.client_report()["clients"] == []
        assert httpx.get(f"{m.url}/__mock/chaos").json()["rate"] == 0


def test_chaos_is_seeded_and_reproducible():
    with serve() as m:
        def statuses() -> list[int]:
            m.reset()
            m.chaos(0.5, seed=42, kinds=["429", "503"])
            with httpx.Client(base_url=m.url, headers={"X-Api-Key": ids.FULL}) as c:
                return [c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").status_code
                        for _ in range(30)]

        first = statuses()
        assert set(first) == {200, 429, 503}
        assert statuses() == first  # the same seed and requests: the same faults
        m.reset()
        m.chaos(0.5, seed=43, kinds=["429", "503"])
        with httpx.Client(base_url=m.url, headers={"X-Api-Key": ids.FULL}) as c:
            other = [c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").status_code
                     for _ in range(30)]
        assert other != first


def test_a_dropped_job_start_is_replayed_on_a_retry_with_its_key():
    """Idempotency stays honest under chaos: the drop came after the job started, so the
    retry with the same key gets that job, not a second one."""
    with serve() as m:
        m.chaos(1.0, kinds=["drop"], operations=["regenerateContent"])
        key = str(uuid.uuid4())
        with httpx.Client(base_url=m.url, headers={"X-Api-Key": ids.FULL}) as c:
            with pytest.raises(httpx.TransportError):
                c.post(REGEN, json={}, headers={"Idempotency-Key": key})
            m.clear_chaos()
            again = c.post(REGEN, json={}, headers={"Idempotency-Key": key})
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        starts = [e for e in m.requests(operationId="regenerateContent")]
        assert [e["status"] for e in starts] == [202, 0]  # newest first: the drop, the replay


def test_a_drop_closes_the_connection_without_a_status_line():
    with serve() as m:
        m.fault(match={"operationId": "getContent"}, drop=True)
        url = urlsplit(m.url)
        with socket.create_connection((url.hostname, url.port), timeout=10) as s:
            s.sendall(f"GET /v1/content/{ids.CNT_NOT_REQUIRED} HTTP/1.1\r\nHost: x\r\n"
                      f"X-Api-Key: {ids.FULL}\r\n\r\n".encode())
            try:
                got = s.recv(4096)
            except ConnectionResetError:
                got = b""
        assert got == b"", got  # no "HTTP/1.1 200", no bytes at all
