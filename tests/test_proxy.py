"""The validating proxy (D13), end to end: real processes on loopback, stopped by their pid.

In front of the real mock the whole workflow passes with no violation; in front of a server
that breaks one rule per request (tests/broken/proxy_targets.py) each break is found and named;
client mistakes are the client's; the exit status and the reports follow from what was found.
"""

from __future__ import annotations

import json
import signal
import socket
import uuid
import xml.etree.ElementTree as ET
from collections import deque

import httpx
import pytest

from layers_kit.conformance.proxy.checks import CHECKS
from layers_kit.conformance.proxy.ledger import SERVER, Finding, Ledger
from layers_kit.conformance.proxy.memory import Memory
from tests.broken.proxy_targets import BROKEN
from tests.support.process import start_mock
from tests.support.proxy import start_broken_target, start_proxy, violations

pytestmark = pytest.mark.e2e

DEMO = "prj_00000000-0000-4000-8000-000000000002"
REVIEWED = "prj_00000000-0000-4000-8000-000000000001"
BUSY = "cnt_00000000-0000-4000-8000-000000000104"
BROKE = "cnt_00000000-0000-4000-8000-000000000004"
NOT_REQUIRED = "cnt_00000000-0000-4000-8000-000000000103"


@pytest.fixture(scope="module")
def mock():
    m = start_mock("--clock", "manual", "--stage-seconds", "1")
    yield m
    m.stop()


def _client(url: str, key: str | None = "lp_test_full") -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-Api-Key": key} if key else {}, timeout=30)



def _stop(proc) -> int:
    return proc.stop(signal.SIGTERM, timeout=30)


def _workflow(c: httpx.Client, advance) -> int:
    """Every operation of the contract, the happy paths and the errors a correct client meets.
    Returns the number of requests sent."""
    sent = 0

    def call(method: str, path: str, expect: int, **kw) -> httpx.Response:
        nonlocal sent
        sent += 1
        r = c.request(method, path, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r

    key = str(uuid.uuid4())
    gen = call("POST", f"/v1/projects/{DEMO}/content", 202, headers={"Idempotency-Key": key},
               json={"format": "video_remix", "variantCount": 2,
                     "brief": {"topic": "Proxy day", "valuePropositions": ["one"]}})
    replay = call("POST", f"/v1/projects/{DEMO}/content", 202,
                  headers={"Idempotency-Key": key},
                  json={"format": "video_remix", "variantCount": 2,
                        "brief": {"topic": "Proxy day", "valuePropositions": ["one"]}})
    assert replay.headers["idempotent-replayed"] == "true"
    cid, location = gen.json()["containerId"], gen.headers["location"]
    etag = None
    for _ in range(7):  # every stage, with a 304 between moves
        job = call("GET", location, 200)
        etag = job.headers["etag"]
        call("GET", location, 304, headers={"If-None-Match": etag})
        advance(1)
    assert job.json()["status"] == "completed"
    content = call("GET", f"/v1/content/{cid}", 200).json()
    call("GET", f"/v1/content/{cid}/assets/{content['assets'][0]['assetId']}", 200)
    regen = call("POST", f"/v1/content/{cid}/regenerate", 202,
                 json={"brief": {"angle": "Again"}}, headers={"Idempotency-Key": str(uuid.uuid4())})
    call("POST", f"/v1/content/{cid}/regenerate", 409, json={})  # R10 busy: the server's 409
    call("POST", f"/v1/jobs/{regen.json()['jobId']}/cancel", 202)
    call("POST", f"/v1/jobs/{regen.json()['jobId']}/cancel", 200)
    call("GET", regen.headers["location"], 200)
    call("POST", f"/v1/content/{NOT_REQUIRED}/approve", 409, json={})
    call("GET", f"/v1/projects/{REVIEWED}/content-review-policy", 200)
    call("PATCH", f"/v1/projects/{REVIEWED}/content-review-policy", 200,
         json={"policy": "review_all"})
    reviewed = call("POST", f"/v1/projects/{REVIEWED}/content", 202, json={"brief": {
        "topic": "Needs review"}})
    advance(6)
    rcid = reviewed.json()["containerId"]
    call("POST", f"/v1/content/{rcid}/schedule", 409,
         json={"scheduledFor": "2030-01-01T09:00:00.000Z"})  # APPROVAL_REQUIRED
    call("POST", f"/v1/content/{rcid}/approve", 200, json={"note": "fine"})
    post = call("POST", f"/v1/content/{rcid}/schedule", 201,
                json={"scheduledFor": "2030-01-01T09:00:00.000Z"})
    call("GET", f"/v1/scheduled-posts/{post.json()['id']}", 200)
    call("GET", f"/v1/content/cnt_{uuid.uuid4()}", 404)
    call("POST", f"/v1/content/{BUSY}/regenerate", 409, json={})
    call("POST", f"/v1/content/{cid}/regenerate", 422,
         json={"brief": {"topic": "moderation-test-block"}})
    with _client(str(c.base_url), "lp_test_readonly") as ro:
        r = ro.post(f"/v1/content/{cid}/regenerate", json={})
        assert r.status_code == 403
    with _client(str(c.base_url), "lp_test_broke") as broke:
        r = broke.post(f"/v1/content/{BROKE}/regenerate", json={})
        assert r.status_code == 402
    with _client(str(c.base_url), "lp_test_nope") as unknown:
        assert unknown.get(f"/v1/content/{cid}").status_code == 401
    return sent + 3


def test_proxy_in_front_of_the_mock_passes_the_whole_workflow(mock, tmp_path):
    reports = [tmp_path / "proxy.md", tmp_path / "proxy.html", tmp_path / "proxy.json"]
    proxy = start_proxy(mock.url, "--junit-xml", str(tmp_path / "proxy.xml"),
                        *[a for p in reports for a in ("--report", str(p))])
    try:
        with _client(proxy.url) as c:
            advance = lambda s: c.post("/__mock/clock/advance",  # noqa: E731
                                       json={"seconds": s}).raise_for_status()
            # outside the contract: forwarded, not judged
            c.post("/__mock/reset", json={}).raise_for_status()
            sent = _workflow(c, advance)
            found = violations(proxy.url)
            assert found["server"] == [] and found["client"] == [], found
            assert found["counts"]["checked"] == sent
            # a body over 1 MiB passes through, unchecked and counted; the answer is the mock's
            big = c.post(f"/v1/content/{NOT_REQUIRED}/regenerate", json={"brief": {
                "topic": "x" * (1024 * 1024 + 10)}})
            assert big.status_code == 413 and big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
            # a client's mistake is the client's: reported, it does not fail the run
            bad = c.post(f"/v1/content/{NOT_REQUIRED}/regenerate", json={"brief": {"topic": 5}})
            assert bad.status_code == 422
            found = violations(proxy.url)
            assert found["counts"]["oversizedUnchecked"] == 1
            assert [v["check"] for v in found["client"]] == ["client.request-schema"]
            assert found["server"] == []
    finally:
        code = _stop(proxy)
    assert code == 0, "".join(proxy.output)
    data = json.loads((tmp_path / "proxy.json").read_text())
    assert data["serverViolations"] == 0 and data["clientViolations"] == 1
    assert data["exitStatus"] == 0
    md = (tmp_path / "proxy.md").read_text()
    assert "client.request-schema" in md and "Exit status 0" in md
    assert "lp_test_full" not in md and "lp_test_…" in md  # keys masked
    assert "<table>" in (tmp_path / "proxy.html").read_text()
    suite = ET.parse(tmp_path / "proxy.xml").getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) == len(CHECKS)


def test_the_mocks_5xx_pass_the_proxy(mock, tmp_path):
    """500, 502, 503 (with Retry-After) and 504 are answers of every operation (contract 1.2.0):
    injected by faults in front of which the proxy stands, none is a server violation."""
    proxy = start_proxy(mock.url, "--report", str(tmp_path / "proxy.json"))
    try:
        with _client(proxy.url) as c:
            c.post("/__mock/reset", json={}).raise_for_status()
            for status in (500, 502, 503, 504):
                c.post("/__mock/faults", json={"status": status, "count": 1, "match": {
                    "operationId": "getContent"}}).raise_for_status()
                r = c.get(f"/v1/content/{NOT_REQUIRED}")
                assert r.status_code == status and r.json()["error"]["code"] == "INTERNAL"
                assert (r.headers.get("retry-after") is not None) == (status == 503)
                c.post("/__mock/faults", json={"status": status, "count": 1, "match": {
                    "operationId": "regenerateContent"}}).raise_for_status()
                r = c.post(f"/v1/content/{NOT_REQUIRED}/regenerate", json={},
                           headers={"Idempotency-Key": str(uuid.uuid4())})
                assert r.status_code == status
            found = violations(proxy.url)
            assert found["server"] == [] and found["client"] == [], found
            assert found["counts"]["checked"] == 8
    finally:
        code = _stop(proxy)
    assert code == 0, "".join(proxy.output)
    assert json.loads((tmp_path / "proxy.json").read_text())["serverViolations"] == 0


def test_client_violations_fail_the_run_only_when_asked(mock, tmp_path):
    proxy = start_proxy(mock.url, "--fail-on-client-violations",
                        "--junit-xml", str(tmp_path / "proxy.xml"))
    try:
        with _client(proxy.url, key=None) as c:
            assert c.get(f"/v1/content/{NOT_REQUIRED}").status_code == 401  # no key: D8
    finally:
        code = proxy.stop(signal.SIGINT, timeout=30)  # Ctrl-C stops it the same way
    assert code == 1
    failures = ET.parse(tmp_path / "proxy.xml").getroot().findall(".//failure")
    assert [f.get("message").split(" ")[0] for f in failures] == ["D8"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A broken server and a proxy in front of it, shared by the cases below."""
    out = tmp_path_factory.mktemp("broken")
    server = start_broken_target()
    # enough examples per check that each case below finds its own exchange among them
    proxy = start_proxy(server.url, "--examples", "50", "--report", str(out / "proxy.json"),
                        "--report", str(out / "proxy.md"), "--junit-xml", str(out / "proxy.xml"))
    yield proxy, out
    server.stop()
    proxy.stop(signal.SIGKILL)  # normally stopped (and its exit status read) by the last test


def _send(proxy_url: str, name: str) -> None:
    """The requests that make the broken server show `name` through the proxy."""
    job = "/v1/jobs/job_" + "0" * 20 + str(uuid.uuid4().int)[:6]
    with _client(proxy_url) as c:
        c.headers["X-Broken"] = name
        regen = f"/v1/content/{NOT_REQUIRED}/regenerate"
        if name in ("stale-etag", "stage-back"):
            c.get(job)
            c.get(job)
        elif name in ("no-etag",):
            c.get(job)
        elif name in ("location-mismatch", "replayed-first-use"):
            c.post(regen, json={}, headers={"Idempotency-Key": str(uuid.uuid4())})
        elif name in ("replay-differs", "runs-again"):
            key = str(uuid.uuid4())
            c.post(regen, json={}, headers={"Idempotency-Key": key})
            c.post(regen, json={}, headers={"Idempotency-Key": key})
        elif name == "accepts-invalid":
            c.post(regen, json={"preserveAssets": "yes"})
        else:
            c.get(f"/v1/content/{NOT_REQUIRED}")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_proxy_finds_and_names_each_broken_rule(broken, name):
    proxy, _ = broken
    _send(proxy.url, name)
    found = violations(proxy.url)
    named = {v["check"] for v in found[SERVER]
             for e in v["examples"] if e["exchange"]["requestHeaders"].get("x-broken") == name}
    assert BROKEN[name] in named, (name, found[SERVER])
    assert "lp_test_full" not in json.dumps(found)


def test_large_answers_and_preflights_pass_through_unjudged(broken):
    proxy, _ = broken
    before = violations(proxy.url)["counts"]
    size = 3 * 1024 * 1024
    with _client(proxy.url) as c:
        with c.stream("GET", f"/v1/content/{NOT_REQUIRED}",
                      headers={"X-Big-Body": str(size)}) as r:
            received = sum(len(chunk) for chunk in r.iter_raw())
        assert r.status_code == 200 and received > size  # streamed through whole
        pre = c.options(f"/v1/content/{NOT_REQUIRED}", headers={
            "Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
        assert pre.status_code == 404  # the tiny server's answer, forwarded as it came
    after = violations(proxy.url)["counts"]
    assert after["oversizedUnchecked"] == before.get("oversizedUnchecked", 0) + 1
    assert after["outsideContract"] == before.get("outsideContract", 0) + 1
    assert after["checked"] == before["checked"]


def test_broken_server_fails_the_run_with_reports(broken):
    proxy, out = broken
    with _client(proxy.url) as c:  # a correct exchange: no violation of its own
        assert c.get(f"/v1/content/{NOT_REQUIRED}").status_code == 200
    assert _stop(proxy) == 1
    data = json.loads((out / "proxy.json").read_text())
    failing = {r["check"] for r in data["checks"] if r["violations"]}
    assert set(BROKEN.values()) <= failing
    unasked = [e for r in data["checks"] for e in r["examples"]
               if "x-broken" not in e["exchange"]["requestHeaders"]]
    assert unasked == [], "a correct exchange was called a violation"
    assert data["exitStatus"] == 1 and data["serverViolations"] >= len(BROKEN)
    junit = {f.get("message") for f in
             ET.parse(out / "proxy.xml").getroot().findall(".//failure")}
    assert any(m.startswith("R1 ") for m in junit) and any(m.startswith("D7 ") for m in junit)
    md = (out / "proxy.md").read_text()
    assert "## Server violations" in md and "lp_test_full" not in md


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flag", ["--idempotency-ttl", "--retention", "--read-timeout"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_memory_spans_that_cannot_work_are_usage_errors(flag, value):
    """A TTL or retention of 0 or less would forget every key at once: refused at start."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "layers_kit.conformance", "proxy", "--target",
                           "http://127.0.0.1:1", "--listen", "127.0.0.1:0", flag, value],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{flag} must be more than 0" in done.stderr


def test_unreachable_target_is_a_transport_failure_not_a_violation(tmp_path):
    """No answer from the target is no verdict on it: the client gets a 502 in the D5 envelope
    naming the reason, the reports keep it apart from server violations, and the run could
    not judge (exit 2), never "the target broke the contract" (exit 1)."""
    proxy = start_proxy(f"http://127.0.0.1:{_closed_port()}", "--report",
                        str(tmp_path / "proxy.json"), "--junit-xml", str(tmp_path / "proxy.xml"))
    try:
        r = httpx.get(proxy.url + f"/v1/content/{NOT_REQUIRED}",
                      headers={"X-Api-Key": "lp_test_full"}, timeout=30)
        assert r.status_code == 502 and "did not answer" in r.text
        error = r.json()["error"]
        assert error["code"] == "INTERNAL" and error["requestId"] == r.headers["x-request-id"]
        assert "ConnectError" in error["message"]
        found = violations(proxy.url)
        assert found[SERVER] == [] and found["transport"]["count"] == 1
        assert found["transport"]["kinds"] == {"connect": 1}
    finally:
        assert _stop(proxy) == 2
    data = json.loads((tmp_path / "proxy.json").read_text())
    assert data["serverViolations"] == 0 and data["transportFailures"] == 1
    assert data["verdict"] == "could not judge" and data["exitStatus"] == 2
    suite = ET.parse(tmp_path / "proxy.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "1"


def test_usage_errors_exit_2():
    from layers_kit.conformance.cli import main

    assert main(["proxy", "--target", "ftp://x"]) == 2
    assert main(["proxy", "--target", "http://127.0.0.1:1", "--listen", "nowhere"]) == 2
    assert main(["proxy", "--target", "http://127.0.0.1:1", "--report", "r.pdf"]) == 2


# ---- bounded memory, in process -----------------------------------------------------------

def test_ledger_keeps_the_first_examples_and_counts_the_rest():
    ledger = Ledger(examples_per_check=3)
    for i in range(10_000):
        ledger.record(SERVER, "D5", "server.request-id", "t", Finding("server.request-id",
                                                                      f"#{i}"), {"n": i})
    (tally,) = ledger.snapshot()[SERVER]
    assert tally["count"] == 10_000
    assert [e["message"] for e in tally["examples"]] == ["#0", "#1", "#2"]


def test_memory_forgets_the_oldest_and_never_calls_a_forgotten_key_new():
    from layers_kit.conformance.proxy.exchange import Exchange

    memory = Memory(max_keys=2, max_jobs=2)

    class V:  # the part of a View the memory reads
        def __init__(self, key: str, t: float) -> None:
            self.key_scope = key
            self.ex = Exchange("POST", "http://x/v1", "/v1", [], None, t)

    for i in range(3):
        memory.started(V(f"k{i}", float(i)))
    assert len(memory._first_use) == 2 and memory.forgot_keys
    assert memory.seen_before(V("k-never", 10.0))  # unsure after forgetting: not a violation


def test_memory_forgets_keys_after_the_ttl_and_jobs_after_the_retention_without_overflow():
    """A long run holds only what the target still keeps: keys past the idempotency TTL and
    jobs unread for the retention go, and that is no overflow (keys stay judgeable)."""
    from layers_kit.conformance.judges import JobRead
    from layers_kit.conformance.proxy.exchange import Exchange
    from layers_kit.conformance.proxy.memory import _Key

    memory = Memory(ttl=60.0, retention=100.0)

    class V:
        def __init__(self, key: str | None, t: float) -> None:
            self.key_scope = key
            self.ex = Exchange("POST", "http://x/v1", "/v1", [], None, t)

    for i in range(1000):
        memory.started(V(f"k{i}", float(i)))
        memory._keys[f"k{i}"] = _Key(float(i), "fp", None)
        memory._jobs[f"j{i}"] = deque([(float(i), JobRead.__new__(JobRead))])
    memory.started(V(None, 1000.0))
    assert sorted(memory._first_use) == sorted(f"k{i}" for i in range(940, 1000))
    assert len(memory._keys) == 60 and len(memory._jobs) == 100
    assert not memory.forgot_keys
    assert not memory.seen_before(V("k5", 1000.0))  # reused after the TTL: new again
    assert memory.seen_before(V("k999", 1000.5))


def test_a_judge_that_falls_behind_forwards_without_judging(monkeypatch):
    from layers_kit.conformance.proxy import judge as judge_mod
    from layers_kit.conformance.proxy.exchange import Exchange

    monkeypatch.setattr(judge_mod, "MAX_PENDING", 0)  # as if thousands were waiting
    j = judge_mod.Judge("http://127.0.0.1:1")
    try:
        for _ in range(3):
            j.finished(Exchange("GET", "http://127.0.0.1:1/v1/jobs/x", "/v1/jobs/x", [], None,
                                0.0))
    finally:
        final = j.close()
    assert final["counts"] == {"exchanges": 3, "unjudged": 3} and final["pending"] == 0


def test_keys_are_masked_in_every_shown_exchange():
    from layers_kit.conformance.proxy.exchange import masked_headers

    shown = masked_headers([("X-Api-Key", "lp_test_full"),
                            ("Authorization", "Bearer lp_test_other"),
                            ("X-Admin-Token", "s3cret-token-value"), ("Accept", "*/*")])
    assert shown == {"X-Api-Key": "lp_test_…", "Authorization": "Bearer lp_test_…",
                     "X-Admin-Token": "s3cret-t…", "Accept": "*/*"}
