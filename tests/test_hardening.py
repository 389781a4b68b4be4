"""Hardening, against the real `layers-mock` process on 127.0.0.1: a regression test for each
defect found by trying the mock as an attacker and as a careless user would.

Each test names what used to happen. Processes are started on a free port and stopped by pid.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import ids
from tests.support.process import MockProcess, start_mock

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
FULL = {"X-Api-Key": ids.FULL}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def mock_process():
    mp = start_mock("--clock", "manual", "--stage-seconds", "1")
    yield mp
    assert mp.stop() == 0, "".join(mp.output)


@pytest.fixture
def http(mock_process: MockProcess):
    with mock_process.client(None) as c:
        assert c.post("/__mock/reset", json={}).status_code == 200
        yield c


def assert_envelope(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["requestId"] == r.headers["x-request-id"]
    return err


def advance(http: httpx.Client, seconds: float) -> None:
    assert http.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


# ---- tenant existence oracle (D8, R12) ---------------------------------------------------------

def test_generate_with_another_orgs_container_id_answers_as_a_free_id(http):
    """Was 409 CONFLICT for another org's id and 202 for a free one: an existence oracle."""
    other_before = http.get(f"/v1/content/{ids.CNT_OTHER}", headers={"X-Api-Key": ids.OTHER})
    body = {"brief": {"topic": "Squatting"}}
    taken = http.post(f"/v1/projects/{ids.PRJ_AUTO}/content", headers=FULL,
                      json={**body, "id": ids.CNT_OTHER.removeprefix("cnt_")})
    free = http.post(f"/v1/projects/{ids.PRJ_AUTO}/content", headers=FULL,
                     json={**body, "id": str(uuid.uuid4())})
    assert (taken.status_code, free.status_code) == (202, 202)
    assert set(taken.json()) == set(free.json())
    other_after = http.get(f"/v1/content/{ids.CNT_OTHER}", headers={"X-Api-Key": ids.OTHER})
    assert other_after.json() == other_before.json()  # never touched


# ---- jobs end unobserved (D7) ------------------------------------------------------------------

def test_credits_of_a_job_nobody_reads_come_back_when_it_fails(tmp_path):
    """Was: a job never polled stayed running forever and kept its credits reserved."""
    text = (ROOT / "mock" / "fixtures.yaml").read_text().replace(
        "credits: 1000000000", "credits: 240", 1)
    fixtures = tmp_path / "fixtures.yaml"
    fixtures.write_text(text)
    mp = start_mock("--clock", "manual", "--stage-seconds", "1", "--fixtures", str(fixtures))
    try:
        with mp.client() as c:
            url = f"/v1/projects/{ids.PRJ_AUTO}/content"
            body = {"brief": {"topic": "Unobserved"}, "variantCount": 2}
            assert c.post(url, json=body, headers={"Prefer": "job=fail"}).status_code == 202
            assert_envelope(c.post(url, json=body), 402, "BILLING_EXHAUSTED")
            advance(c, 30)  # the job failed meanwhile; nobody read it or its containers
            assert c.post(url, json=body).status_code == 202
    finally:
        assert mp.stop() == 0


# ---- the control API and Prefer: every input answered in the envelope ---------------------------

@pytest.mark.parametrize("fault", [
    {"match": {"method": 5}, "status": 503},
    {"match": {"path": 5}, "status": 503},
    {"match": {"path": ["^/v1"]}, "status": 503},
    {"match": {"path": "(a)\\1"}, "status": 503},  # a backreference: RE2 has none
    {"status": 503, "code": "NOT_FOUND"},  # contradicts D5
    {"status": 418},
    {"drop": "false"},
    {"code": "INTERNAL", "message": 5},
    {"delayMs": 0},
    {"status": 503, "nested": json.loads("[" * 900 + "]" * 900)},
])
def test_bad_fault_definitions_are_422_and_arm_nothing(http, fault):
    """Were accepted (then every API request was a 500), or were a 500 themselves."""
    assert_envelope(http.post("/__mock/faults", json=fault), 422, "VALIDATION_FAILED")
    assert http.get("/__mock/faults").json() == {"faults": []}
    assert http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).status_code == 200


def test_deeply_nested_control_body_is_422(http):
    raw = b"[" * 5000 + b"]" * 5000
    assert_envelope(http.post("/__mock/faults", content=raw, headers=JSON), 422,
                    "VALIDATION_FAILED")


@pytest.mark.parametrize("fault, op", [({"code": "RATE_LIMITED"}, "getContent"),
                                       ({"status": 429}, "getContent"),
                                       ({"code": "IDEMPOTENCY_IN_PROGRESS"}, "approveContent")])
def test_faults_keep_the_contract_they_imitate(http, fault, op):
    """A RATE_LIMITED fault answered without the Retry-After that D5 promises. (A 409 is not
    documented on getContent: it goes on an operation that documents it.)"""
    armed = http.post("/__mock/faults", json={"match": {"operationId": op}, **fault})
    assert armed.status_code == 201, armed.text
    r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL) if op == "getContent" \
        else http.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/approve", headers=FULL, json={})
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] in ("RATE_LIMITED", "IDEMPOTENCY_IN_PROGRESS")


def test_a_dropped_request_is_journaled_as_dropped_and_logs_no_traceback(http, mock_process):
    """Was journaled as 200, and each drop logged a full traceback."""
    assert http.post("/__mock/faults", json={"match": {"operationId": "getContent"},
                                             "drop": True}).status_code == 201
    with pytest.raises(httpx.TransportError):
        http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL)
    entry = http.get("/__mock/requests?limit=1").json()["requests"][0]
    assert entry["dropped"] is True and entry["status"] == 0
    assert "Traceback" not in "".join(mock_process.output)


def test_a_backtracking_pattern_cannot_stall_the_mock(http):
    """`^/(a|a)+$` stalled both SQLite workers 4.4 s: now RE2 runs it in linear time."""
    assert http.post("/__mock/faults", json={"match": {"path": "^/(a|a)+$"},
                                             "status": 503}).status_code == 201
    r = http.get("/" + "a" * 40 + "b", headers=FULL, timeout=5)
    assert_envelope(r, 404, "NOT_FOUND")


@pytest.mark.parametrize("prefer", [b"latency=\xb2", b"code=\xb2", b"code=4\xb90",
                                    "latency=١٢".encode(), b"code=4O9"])
def test_prefer_with_unicode_digits_is_422(http, prefer):
    """`str.isdigit` is true for "²" (a Latin-1 header byte), int() is not: these were 500s."""
    r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers={**FULL, "Prefer": prefer})
    assert_envelope(r, 422, "VALIDATION_FAILED")


@pytest.mark.parametrize("query", ["limit=%C2%B2", "limit=0", "limit=1001", "limit=x",
                                   "nope=1"])
def test_journal_query_is_validated(http, query):
    assert_envelope(http.get(f"/__mock/requests?{query}"), 422, "VALIDATION_FAILED")


# ---- the control API from a browser ------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"},
                                     {"Content-Type": "application/x-www-form-urlencoded"}])
def test_control_posts_need_a_json_content_type(http, headers):
    """A page on any origin could POST text/plain to /__mock/reset without a preflight."""
    r = http.post("/__mock/faults", content=b'{"status": 503}', headers=headers)
    assert_envelope(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_envelope(http.post("/__mock/reset", headers=headers), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert http.get("/__mock/faults").json() == {"faults": []}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4010", "10.0.0.1",
                                  "127.0.0.1.evil.example"])
def test_control_api_refuses_a_foreign_host_header(http, host):
    """DNS rebinding: a name of the attacker's resolving to 127.0.0.1 reached the control API."""
    r = http.post("/__mock/reset", json={}, headers={"Host": host})
    assert_envelope(r, 404, "NOT_FOUND")
    # The API itself still answers any Host (it has keys).
    assert http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}",
                    headers={**FULL, "Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1", "127.0.0.1", "127.1.2.3:9",
                                  "[::1]:4010"])
def test_control_api_answers_loopback_host_names(http, host):
    assert http.get("/__mock/clock", headers={"Host": host}).status_code == 200


def test_control_api_is_out_of_cors(http):
    preflight = http.options("/__mock/reset", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in preflight.headers
    r = http.get("/__mock/clock", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("path", ["/__mock/reset/", "/__mock/faults/", "/__mock"])
def test_control_paths_are_exact(http, path):
    assert_envelope(http.post(path, json={}), 404, "NOT_FOUND")


def test_control_api_is_described_and_served(http):
    from openapi_spec_validator import validate

    doc = http.get("/__mock/openapi.json").json()
    validate(doc)
    assert {"/__mock/reset", "/__mock/faults", "/__mock/clock/advance"} <= set(doc["paths"])
    from layers_kit.mock.domain.errors import STATUS_BY_CODE

    fault = doc["components"]["schemas"]["FaultRequest"]["properties"]
    assert fault["code"]["enum"] == list(STATUS_BY_CODE)  # D5's codes, kept in step
    statuses = set(fault["status"]["anyOf"][0]["enum"])
    assert statuses == {s for s in STATUS_BY_CODE.values() if s < 500}


# ---- options refused at start ------------------------------------------------------------------

@pytest.mark.parametrize("args, word", [
    (["--stage-seconds", "nan"], "--stage-seconds"),
    (["--stage-seconds", "inf"], "--stage-seconds"),
    (["--stage-seconds", "0"], "--stage-seconds"),
    (["--idempotency-ttl", "-1"], "--idempotency-ttl"),
    (["--retention", "-5"], "--retention"),
    (["--port", "70000"], "--port"),
    (["--read-timeout=-inf"], "--read-timeout"),
    (["--admin-token", "tök"], "admin token"),
])
def test_options_that_cannot_work_are_refused_at_start(args, word):
    """nan stage seconds made every getJob a 500; --port 70000 was a traceback."""
    done = subprocess.run([sys.executable, "-m", "layers_kit.mock", *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert word in done.stderr and "Traceback" not in done.stderr


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.mark.parametrize("source", ["file", "env"])
def test_admin_token_from_a_file_or_the_environment_never_reaches_worker_environments(
        tmp_path, monkeypatch, source):
    """--admin-token was visible in ps and passed to workers in the config's env variable."""
    token = f"tok-{uuid.uuid4().hex}"
    args = ["--store", f"sqlite:///{tmp_path}/m.db", "--workers", "2"]
    if source == "file":
        (tmp_path / "token").write_text(token + "\n")
        (tmp_path / "token").chmod(0o600)  # a file others may read is refused
        args += ["--admin-token-file", str(tmp_path / "token")]
    else:
        monkeypatch.setenv("LAYERS_MOCK_ADMIN_TOKEN", token)
    mp = start_mock(*args)
    try:
        cmdline = Path(f"/proc/{mp.pid}/cmdline").read_bytes()
        assert token.encode() not in cmdline
        workers = _children(mp.pid)
        assert workers
        for pid in workers:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert token.encode() not in environ
            assert token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        with mp.client(None) as c:
            for _ in range(4):  # both workers, whichever answers
                assert_envelope(c.post("/__mock/reset", json={}), 401, "UNAUTHENTICATED")
                r = c.post("/__mock/reset", json={}, headers={"X-Admin-Token": token})
                assert r.status_code == 200
    finally:
        assert mp.stop() == 0


def _raw(mp: MockProcess, data: bytes, timeout: float = 10) -> bytes:
    host, port = mp.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


# ---- paths and headers -----------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", f"/v1/content/{ids.CNT_NOT_REQUIRED}/"),
    ("POST", f"/v1/content/{ids.CNT_NOT_REQUIRED}%2Fregenerate"),
    ("POST", f"/v1/content/{ids.CNT_NOT_REQUIRED}%2fregenerate"),
    ("GET", "/openapi.json/"),
])
def test_trailing_slash_and_encoded_slash_are_404_in_the_envelope(http, method, path):
    """Were a 307 with a Location built from Host, and a regenerate run through %2F."""
    r = http.request(method, path, headers={**FULL, "Host": "evil.example"},
                     json={} if method == "POST" else None)
    assert_envelope(r, 404, "NOT_FOUND")
    assert "location" not in r.headers
    journal = http.get("/__mock/requests?limit=5&operationId=regenerateContent").json()
    assert journal["requests"] == []


@pytest.mark.parametrize("headers", [
    [("X-Api-Key", ids.FULL), ("X-Api-Key", ids.OTHER)],
    [("X-Api-Key", ids.FULL), ("X-Api-Key", ids.FULL)],
    [("Authorization", f"Bearer {ids.FULL}"), ("Authorization", f"Bearer {ids.OTHER}")],
])
def test_a_duplicated_key_header_is_refused(http, headers):
    """Took the last value silently."""
    r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=headers)
    assert_envelope(r, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("headers", [
    {"X-Big": "a" * 40_000},
    {f"X-H{i}": "v" for i in range(150)},
])
def test_oversized_header_sections_get_431_in_the_envelope(http, headers):
    """A 16 MB header value and 100,000 headers were accepted."""
    r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers={**FULL, **headers})
    assert_envelope(r, 431, "VALIDATION_FAILED")


def test_a_16_mb_header_is_answered_not_held(mock_process):
    """The parser reads it, the mock answers 431 and the connection is done."""
    request = (b"GET /v1/content/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"X-Big: " + b"a" * (16 << 20) + b"\r\n\r\n")
    try:
        answer = _raw(mock_process, request, timeout=30)
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the connection was cut before the mock could answer")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert json.loads(body)["error"]["code"] == "VALIDATION_FAILED"


def test_slow_connections_are_closed_after_the_read_timeout():
    """200 slowloris connections were never timed out."""
    mp = start_mock("--read-timeout", "1")
    try:
        host, port = mp.url.removeprefix("http://").rsplit(":", 1)
        conns = [socket.create_connection((host, int(port)), timeout=10) for _ in range(20)]
        for i, s in enumerate(conns):  # half stall in the headers, half in the body
            s.sendall(b"GET /v1/content/x HTTP/1.1\r\nHost: 127.0.0.1\r\n" if i % 2 else
                      b"POST /__mock/faults HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        for s in conns:
            assert s.recv(100) == b""  # closed by the mock, well before our 10 s timeout
            s.close()
        with mp.client() as c:  # and the mock still answers
            assert c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").status_code == 200
            # A request slower to answer than the read timeout is not cut.
            r = c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers={"Prefer": "latency=1500"})
            assert r.status_code == 200
    finally:
        assert mp.stop() == 0


# ---- Redis: stalls and restarts ------------------------------------------------------------

def test_an_idle_keep_alive_connection_lives_past_common_client_expiry_then_closes():
    """uvicorn closed idle connections after 5 s, the very moment httpx (5 s) reuses them: a
    request sent on a connection being closed was lost (httpx.ReadError under load). The idle
    limit is the read timeout (10 s by default), longer than httpx's 5 s and undici's 4 s."""
    mp = start_mock("--read-timeout", "7")
    try:
        host, port = mp.url.removeprefix("http://").rsplit(":", 1)
        request = (f"GET /v1/content/{ids.CNT_NOT_REQUIRED} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "X-Api-Key: lp_test_full\r\n\r\n").encode()

        def answer(s: socket.socket) -> bytes:
            data = b""
            while b"\r\n\r\n" not in data:
                more = s.recv(65536)
                assert more, "the mock closed the connection instead of answering"
                data += more
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            while len(body) < length:
                body += s.recv(65536)
            return head

        with socket.create_connection((host, int(port)), timeout=15) as s:
            s.sendall(request)
            assert answer(s).startswith(b"HTTP/1.1 200 ")
            time.sleep(5.5)  # a network timer of the server under test: no clock to inject
            s.sendall(request)  # reused past 5 s: still answered
            assert answer(s).startswith(b"HTTP/1.1 200 ")
            started = time.monotonic()
            assert s.recv(100) == b""  # then closed when idle for the read timeout
            assert 6 < time.monotonic() - started < 12
    finally:
        assert mp.stop() == 0




def test_a_paused_redis_gets_a_bounded_503_and_the_mock_recovers(own_redis):
    """With Redis paused, requests went unanswered for more than 5 s."""
    import signal
    import time

    url, proc = own_redis
    mp = start_mock("--store", url, "--reset")
    try:
        with mp.client() as c:
            assert c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").status_code == 200
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                r = c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", timeout=20)
                took = time.monotonic() - started
                err = assert_envelope(r, 503, "INTERNAL")
                assert r.headers["retry-after"] == "1" and "store" in err["message"]
                assert took < 10
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            assert c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").status_code == 200
    finally:
        assert mp.stop() == 0
    assert "Redis at" in "".join(mp.output) and "keeps nothing on disk" in "".join(mp.output)
