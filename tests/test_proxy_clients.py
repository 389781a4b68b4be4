"""The validating proxy grades real clients with the client rules C1-C6, using the judges the
mock's client report uses (contract/behaviour.py): a careless client's traffic through the
proxy is reported on the client side, rule by rule; a careful one's is not."""

from __future__ import annotations

import time

import httpx
import pytest

from layers_kit.contract.behaviour import MIN_POLL_INTERVAL
from tests.support import ids
from tests.support.process import start_mock
from tests.support.proxy import start_proxy, violations

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def proxied():
    mock = start_mock("--stage-seconds", "0.3")
    proxy = start_proxy(mock.url, "--client-rules")
    yield proxy
    proxy.stop()
    assert mock.stop() == 0, "".join(mock.output)


def _client(proxy, who: str) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, timeout=30,
                        headers={"X-Api-Key": ids.FULL, "X-Client-Id": who})


def _broken(proxy, who: str) -> set[str]:
    time.sleep(0.5)  # the judge works in a process of its own
    found = violations(proxy.url)["client"]
    return {v["rule"] for v in found if v["check"].startswith("client.behaviour")
            for e in v["examples"]
            if e["exchange"]["requestHeaders"].get("x-client-id") == who}


def test_a_careless_client_is_named_rule_by_rule(proxied):
    with _client(proxied, "careless") as c:
        job = c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", json={}).json()["jobId"]
        busy = c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", json={})
        assert busy.status_code == 409
        c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", json={})  # at once: C6
        while c.get(f"/v1/jobs/{job}").json()["status"] == "running":  # tight: C4
            time.sleep(0.05)
        c.get(f"/v1/jobs/{job}")  # after the end: C5
    assert {"C4", "C5", "C6"} <= _broken(proxied, "careless")


def test_a_careful_client_breaks_no_client_rule(proxied):
    with _client(proxied, "careful") as c:
        r = c.post(f"/v1/content/{ids.CNT_PENDING}/regenerate", json={},
                   headers={"Idempotency-Key": "careful-1"})
        assert r.status_code == 202
        etag = None
        while True:
            got = c.get(f"/v1/jobs/{r.json()['jobId']}",
                        headers={"If-None-Match": etag} if etag else {})
            etag = got.headers.get("etag", etag)
            if got.status_code == 200 and got.json()["status"] != "running":
                break
            time.sleep(MIN_POLL_INTERVAL + 0.05)
    assert _broken(proxied, "careful") == set()
