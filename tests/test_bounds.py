"""Bounded under every flood: each structure a client can grow has a bound, answered in the D5
envelope or by a documented oldest-first eviction; and the options that guard the mock refuse
what cannot protect it. Against the real `layers-mock` process on 127.0.0.1.

Each test names what used to happen. Processes are started on a free port and stopped by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from layers_kit.mock import launcher
from layers_kit.mock.config import MAX_WORKERS
from tests.support import ids
from tests.support.process import MockProcess, start_mock

pytestmark = pytest.mark.e2e
FULL = {"X-Api-Key": ids.FULL}


def start_with_env(*args: str, env: dict[str, str]) -> MockProcess:
    running = launcher.start_mock(*args, env={**os.environ, **env})
    return MockProcess(running.proc, running.url, running.output, running.reader)


def assert_envelope(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["requestId"] == r.headers["x-request-id"]
    return err


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "layers_kit.mock", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


# ---- workers ----------------------------------------------------------------------------------

def test_workers_beyond_the_bound_are_refused_at_parse_time(tmp_path):
    """`--workers 100000` spawned 849 processes until the machine ran out of memory."""
    started = time.monotonic()
    err = refused("--store", f"sqlite:///{tmp_path}/m.db", "--workers", "100000")
    assert "--workers must be from 1 to" in err and str(MAX_WORKERS) in err
    assert time.monotonic() - started < 20


def test_sigterm_stops_workers_that_are_still_starting(tmp_path):
    """SIGTERM waited until every worker had started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "layers_kit.mock", "--host", "127.0.0.1", "--port", "0",
         "--store", f"sqlite:///{tmp_path}/m.db", "--workers", str(MAX_WORKERS)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if "listening on" in line:
                break
        proc.send_signal(signal.SIGTERM)  # the workers are being spawned now
        started = time.monotonic()
        assert proc.wait(20) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdout.close()
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "workers outlived their parent"


# ---- the admin token ------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_the_admin_token_from_the_environment_leaves_proc_environ(tmp_path, workers):
    """README: "the mock removes it from its environment after reading it"; it stayed readable
    in /proc/<pid>/environ (os.environ.pop does not touch the block the kernel shows), and
    workers got its unsalted SHA-256 in an environment variable."""
    import hashlib

    token = f"tok-{uuid.uuid4().hex}"
    args = ["--store", f"sqlite:///{tmp_path}/m.db", "--workers", str(workers)]
    mp = start_with_env(*args, env={"LAYERS_MOCK_ADMIN_TOKEN": token})
    try:
        pids = [mp.pid, *(_children(mp.pid) if workers > 1 else [])]
        digest = hashlib.sha256(token.encode()).hexdigest().encode()
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert token.encode() not in environ, pid
            assert digest not in environ, pid
        with mp.client(None) as c:
            for _ in range(4):
                assert_envelope(c.post("/__mock/reset", json={}), 401, "UNAUTHENTICATED")
                r = c.post("/__mock/reset", json={}, headers={"X-Admin-Token": token})
                assert r.status_code == 200
    finally:
        assert mp.stop() == 0


def test_short_tokens_and_readable_token_files_are_refused(tmp_path):
    """A 1-character token and a world-readable token file were accepted."""
    assert "at least 16 characters" in refused("--admin-token", "t")
    assert "at least 16 characters" in refused(env={"LAYERS_MOCK_ADMIN_TOKEN": "short"})
    token = tmp_path / "token"
    token.write_text("a" * 32 + "\n")
    token.chmod(0o644)
    assert "chmod 600" in refused("--admin-token-file", str(token))
    token.chmod(0o600)
    mp = start_mock("--admin-token-file", str(token))
    try:
        with mp.client(None) as c:
            r = c.get("/__mock/clock", headers={"X-Admin-Token": "a" * 32})
            assert r.status_code == 200
    finally:
        assert mp.stop() == 0


# ---- /openapi.json and /reference ---------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_openapi_json_is_built_once():
    """Each /openapi.json was serialized anew (~65 ms of CPU on the event loop): four clients
    fetching it raised getContent's p50 from 1.3 to 291 ms."""
    mp = start_mock()
    try:
        with mp.client(None) as c:
            first = c.get("/openapi.json")
            assert first.status_code == 200 and first.json()["openapi"].startswith("3.")
            before = _cpu_seconds(mp.pid)
            for _ in range(40):
                r = c.get("/openapi.json")
                assert r.content == first.content
            per_request = (_cpu_seconds(mp.pid) - before) / 40
            assert per_request < 0.015, per_request
    finally:
        assert mp.stop() == 0


FAKE_REDOCLY = """#!/bin/sh
echo run >> "{counter}"
sleep 1
{tail}
"""
WRITES_PAGE = """while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done
echo "<html><body>reference</body></html>" > "$out"
"""


def _fake_redocly(tmp_path: Path, tail: str) -> tuple[Path, Path]:
    counter = tmp_path / "runs"
    script = tmp_path / "redocly"
    script.write_text(FAKE_REDOCLY.format(counter=counter, tail=tail))
    script.chmod(0o755)
    return script, counter


def _concurrently(url: str, n: int = 6) -> list[httpx.Response]:
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: httpx.get(url + "/reference", timeout=60), range(n)))


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_reference_page_is_built_once_for_concurrent_first_requests(tmp_path):
    """6 concurrent first requests started 6 node builds (719 MiB) and 3 answered 500."""
    script, counter = _fake_redocly(tmp_path, WRITES_PAGE)
    mp = start_with_env(env={"LAYERS_REDOCLY": str(script),
                             "XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        answers = _concurrently(mp.url)
        assert [r.status_code for r in answers] == [200] * 6
        assert {r.text for r in answers} == {"<html><body>reference</body></html>\n"}
        assert _runs(counter) == 1
        assert [p.name for p in (tmp_path / "cache" / "layers-contract").iterdir()
                if p.suffix == ".tmp"] == []
    finally:
        assert mp.stop() == 0


def test_a_failed_reference_build_is_remembered_with_its_reason(tmp_path):
    """A failing build was run again on every request."""
    script, counter = _fake_redocly(tmp_path, 'echo "boom: no browser here" >&2\nexit 1\n')
    mp = start_with_env(env={"LAYERS_REDOCLY": str(script),
                             "XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        answers = _concurrently(mp.url) + _concurrently(mp.url)
        for r in answers:
            assert r.status_code == 503 and "boom: no browser here" in r.text
            assert 1 <= int(r.headers["retry-after"]) <= 60
        assert _runs(counter) == 1
    finally:
        assert mp.stop() == 0


def test_an_unusable_cache_folder_is_left_aside(tmp_path):
    """A cache folder that could not be written was a 500."""
    script, counter = _fake_redocly(tmp_path, WRITES_PAGE)
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    mp = start_with_env(env={"LAYERS_REDOCLY": str(script), "XDG_CACHE_HOME": str(not_a_folder)})
    try:
        r = httpx.get(mp.url + "/reference", timeout=60)
        assert r.status_code == 200 and "reference" in r.text
        assert httpx.get(mp.url + "/reference", timeout=60).status_code == 200
        assert _runs(counter) == 1
    finally:
        assert mp.stop() == 0


# ---- faults ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def memory_mock():
    mp = start_mock("--clock", "manual", "--stage-seconds", "1")
    yield mp
    assert mp.stop() == 0, "".join(mp.output)


@pytest.fixture
def http(memory_mock: MockProcess):
    with memory_mock.client(None) as c:
        assert c.post("/__mock/reset", json={}).status_code == 200
        yield c


def test_armed_faults_are_bounded_and_compiled_once(http, memory_mock):
    """130 faults with 12-character patterns made each request take 11-22 s (each pattern
    compiled again per request) and memory grew 276 MiB; their number was unbounded."""
    from layers_kit.mock.web.faults import MAX_FAULTS

    for i in range(MAX_FAULTS):
        r = http.post("/__mock/faults", json={"match": {"path": f"^/zz{i:08d}x"},
                                               "status": 503, "count": 100000})
        assert r.status_code == 201, r.text
    for _ in range(3):  # the bound holds, in the envelope, and arms nothing
        assert_envelope(http.post("/__mock/faults", json={"status": 503}), 409, "CONFLICT")
    assert len(http.get("/__mock/faults").json()["faults"]) == MAX_FAULTS
    long = {"match": {"path": "a" * 201}, "status": 503}
    assert_envelope(http.post("/__mock/faults", json=long), 422, "VALIDATION_FAILED")
    before = _cpu_seconds(memory_mock.pid)
    for _ in range(20):
        r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL, timeout=10)
        assert r.status_code == 200
    assert (_cpu_seconds(memory_mock.pid) - before) / 20 < 0.02
    assert http.delete("/__mock/faults").status_code == 200


@pytest.mark.parametrize("fault", [
    {"match": {"operationId": "getContent"}, "status": 402},
    {"match": {"operationId": "getContent"}, "code": "BILLING_EXHAUSTED"},
    {"match": {"operationId": "getJob"}, "code": "IDEMPOTENCY_IN_PROGRESS"},
    {"match": {"method": "GET"}, "status": 413},
    {"match": {"operationId": "regenerateContent"}, "status": 599},
    {"status": 599},
    {"status": 409},  # getContent does not document it, and the fault could hit it
    {"match": {"path": "^/v1/jobs"}, "status": 405},  # no operation documents a 405
])
def test_faults_answer_only_what_the_contract_documents(http, fault):
    """A 402 on getContent, a 413 on a GET or a 599 anywhere were armed and answered."""
    err = assert_envelope(http.post("/__mock/faults", json=fault), 422, "VALIDATION_FAILED")
    assert "openapi.yaml" in err["details"]["issues"][0]["message"]
    assert http.get("/__mock/faults").json() == {"faults": []}


@pytest.mark.parametrize("fault", [
    {"match": {"operationId": "regenerateContent"}, "status": 402},
    {"match": {"operationId": "getJob"}, "status": 504},
    {"match": {"method": "POST"}, "status": 409},  # every POST operation documents it
    {"status": 429},
    {"delayMs": 10},
])
def test_faults_the_contract_documents_are_armed(http, fault):
    assert http.post("/__mock/faults", json=fault).status_code == 201


# ---- the journal, CORS, the clock, idempotency fingerprints ---------------------------------

def test_the_journal_masks_secrets_and_bounds_each_entry(http):
    """The journal kept query strings whole and unmasked: one call returned 30 MB."""
    query = f"api_key={ids.FULL}&token=abc&x={'a' * 6000}"
    http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}?{query}", headers=FULL)
    entry = http.get("/__mock/requests?limit=1").json()["requests"][0]
    assert ids.FULL not in entry["query"] and "abc" not in entry["query"]
    assert entry["query"].startswith("api_key=***&token=***&x=aaa")
    assert len(entry["query"]) <= 513
    r = http.get("/v1/" + "p" * 3000, headers=FULL)
    assert r.status_code == 404
    assert len(http.get("/__mock/requests?limit=1").json()["requests"][0]["path"]) <= 513


def test_vary_origin_is_sent_without_an_origin(http):
    """Vary: Origin was missing when a request had no Origin: a cache could give a browser
    an answer without CORS headers."""
    r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL)
    assert "origin" in [v.strip().lower() for v in r.headers["vary"].split(",")]
    r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}",
                 headers={**FULL, "Origin": "http://localhost:3000"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["vary"].lower().count("origin") == 1


def test_the_clock_cannot_pass_the_year_9999(http):
    """The manual clock could be advanced past 9999-12-31: timestamps then broke the
    contract's date-time format."""
    for _ in range(1000):
        r = http.post("/__mock/clock/advance", json={"seconds": 315360000})
        if r.status_code != 200:
            break
    err = assert_envelope(r, 422, "VALIDATION_FAILED")
    assert "9999" in err["details"]["issues"][0]["message"]
    assert http.get("/__mock/clock").json()["now"].startswith("99")


def test_a_container_id_written_two_ways_is_one_idempotent_request(http):
    """`cnt_<uuid>` and the bare uuid name one container (D3), but the fingerprint saw two
    requests: the retry got IDEMPOTENCY_CONFLICT."""
    headers = {**FULL, "Idempotency-Key": str(uuid.uuid4())}
    body = {"brief": {"cta": "Once"}}
    first = http.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", headers=headers,
                      json=body)
    assert first.status_code == 202
    bare = ids.CNT_NOT_REQUIRED.removeprefix("cnt_").upper()
    again = http.post(f"/v1/content/{bare}/regenerate", headers=headers, json=body)
    assert again.status_code == 202 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


# ---- what clients grow in the store ---------------------------------------------------------

def _docs(db: Path, kind: str) -> list[tuple[str, int]]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, length(doc) FROM docs WHERE kind=? AND "
                            "(expires IS NULL OR expires > strftime('%s','now'))",
                            (kind,)).fetchall()


def _parallel(n: int, fn) -> list:
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(8) as pool:
        return list(pool.map(fn, range(n)))


def test_a_job_start_writes_no_document_that_grows_with_running_jobs(tmp_path):
    """The org's deadline document listed every running job and every start rewrote it:
    generates fell from 762 to 170 req/s with 8,700 jobs running."""
    db = tmp_path / "m.db"
    mp = start_mock("--store", f"sqlite:///{db}", "--stage-seconds", "3600")
    try:
        with mp.client() as c:
            def generate(_):
                return c.post(f"/v1/projects/{ids.PRJ_AUTO}/content",
                              json={"brief": {"topic": "Many"}, "variantCount": 5}).status_code

            assert set(_parallel(300, generate)) == {202}  # 300 jobs running
    finally:
        assert mp.stop() == 0
    index = _docs(db, "due") + _docs(db, "dueq") + _docs(db, "dueq-page")
    assert index and max(size for _, size in index) < 4096, index[:3]
    assert len(_docs(db, "dueq-page")) >= 300 // 32


def test_idempotency_records_are_bounded_per_api_key_oldest_first(tmp_path):
    """98,678 records in 20 s took 212 MiB, kept 24 h: a client minting a key per retry grew
    the store by 10 MiB/s."""
    db = tmp_path / "m.db"
    mp = start_mock("--store", f"sqlite:///{db}", "--idempotency-max-keys", "100")
    url = f"/v1/content/{ids.CNT_NOT_REQUIRED}/approve"  # a kept 409: one record each
    try:
        with mp.client() as c:
            keys = [f"key-{i}" for i in range(400)]

            def approve(i):
                return c.post(url, json={}, headers={"Idempotency-Key": keys[i]}).status_code

            assert set(_parallel(400, approve)) == {409}
            assert len(_docs(db, "idem")) <= 100 + 32 + 8
            newest = c.post(url, json={}, headers={"Idempotency-Key": keys[-1]})
            assert newest.headers.get("idempotent-replayed") == "true"  # D6 within the bound
            oldest = c.post(url, json={}, headers={"Idempotency-Key": keys[0]})
            assert "idempotent-replayed" not in oldest.headers  # forgotten: run again
    finally:
        assert mp.stop() == 0


def test_scheduled_posts_per_container_are_bounded(tmp_path):
    """After ~23,000 posts getContent answered 983 KB instead of 1 KB and scheduling ran at
    half speed."""
    from layers_kit.mock.domain.operations import MAX_SCHEDULED_POSTS

    mp = start_mock("--store", f"sqlite:///{tmp_path}/m.db")
    approved = "cnt_00000000-0000-4000-8000-000000000101"  # has one post already
    try:
        with mp.client() as c:
            def schedule(_):
                return c.post(f"/v1/content/{approved}/schedule",
                              json={"scheduledFor": "2030-01-01T10:00:00Z"}).status_code

            statuses = _parallel(MAX_SCHEDULED_POSTS + 20, schedule)
            assert statuses.count(201) == MAX_SCHEDULED_POSTS - 1
            assert statuses.count(409) == 21
            r = c.post(f"/v1/content/{approved}/schedule",
                       json={"scheduledFor": "2030-01-01T10:00:00Z"})
            err = assert_envelope(r, 409, "CONFLICT")
            assert str(MAX_SCHEDULED_POSTS) in err["message"]
            content = c.get(f"/v1/content/{approved}")
            assert len(content.json()["scheduledPostIds"]) == MAX_SCHEDULED_POSTS
            assert len(content.content) < 8000
    finally:
        assert mp.stop() == 0


def test_containers_created_through_the_api_are_bounded_oldest_first(tmp_path):
    """Containers were kept for good: RSS grew 50 -> 382 MiB in a 60 s mixed load."""
    db = tmp_path / "m.db"
    mp = start_mock("--store", f"sqlite:///{db}", "--stage-seconds", "0.002",
                    "--max-containers", "100")
    try:
        with mp.client() as c:
            made: list[str] = []
            for _ in range(60):  # 300 containers, one generate after the other
                r = c.post(f"/v1/projects/{ids.PRJ_AUTO}/content",
                           json={"brief": {"topic": "Kept?"}, "variantCount": 5})
                assert r.status_code == 202
                made += r.json()["containerIds"]
            assert c.get(f"/v1/content/{made[0]}").status_code == 404  # the oldest: forgotten
            assert c.get(f"/v1/content/{made[-1]}").status_code == 200
            assert c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").status_code == 200  # fixtures
            policy = c.get(f"/v1/projects/{ids.PRJ_AUTO}/content-review-policy")
            assert policy.status_code == 200
    finally:
        assert mp.stop() == 0
    mine = [k for k, _ in _docs(db, "container") if k.startswith("org_")]
    assert len(mine) <= 100 + 32 + 10 + 5, len(mine)
