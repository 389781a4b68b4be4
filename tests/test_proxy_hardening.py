"""The validating proxy under floods and stalls (issue "Bounded under every flood, honest under
every stall"), end to end: real processes on loopback, bounded loads that stop by themselves,
every process stopped by its pid.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.support.process import start_mock
from tests.support.proxy import start_proxy, violations

pytestmark = pytest.mark.e2e

DEMO = "prj_00000000-0000-4000-8000-000000000002"
NOT_REQUIRED = "cnt_00000000-0000-4000-8000-000000000103"


@pytest.fixture(scope="module")
def mock():
    m = start_mock("--clock", "manual")
    yield m
    m.stop()


# ---- 5: D6 judged by what the server answered, not by arrival order -------------------------

def test_concurrent_duplicate_pairs_are_no_server_violation(mock, tmp_path):
    """Two requests with one Idempotency-Key in flight at once: the server may run either
    first and replay it to the other, whichever reached the proxy first."""
    pairs = 400
    proxy = start_proxy(mock.url, "--report", str(tmp_path / "proxy.json"))
    statuses: list[tuple[int, str | None]] = []

    async def pair(c: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
        key = str(uuid.uuid4())
        body = {"format": "video_remix", "brief": {"topic": f"pair {key}"}}
        async with gate:
            answers = await asyncio.gather(*[
                c.post(f"/v1/projects/{DEMO}/content", json=body,
                       headers={"Idempotency-Key": key}) for _ in range(2)])
        statuses.extend((r.status_code, r.headers.get("idempotent-replayed"))
                        for r in answers)

    async def flood() -> None:
        gate = asyncio.Semaphore(50)
        async with httpx.AsyncClient(base_url=proxy.url, timeout=60,
                                     headers={"X-Api-Key": "lp_test_full"},
                                     limits=httpx.Limits(max_connections=100)) as c:
            await asyncio.gather(*[pair(c, gate) for _ in range(pairs)])

    try:
        asyncio.run(flood())
        found = violations(proxy.url)
    finally:
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert len(statuses) == 2 * pairs
    assert sum(1 for s, r in statuses if s == 202 and r == "true") >= pairs * 0.9, statuses
    assert found["server"] == [], json.dumps(found["server"], indent=1)[:3000]
    assert found["counts"]["checked"] == 2 * pairs
    assert code == 0, "".join(proxy.output)
    data = json.loads((tmp_path / "proxy.json").read_text())
    assert data["serverViolations"] == 0


# ---- 6: the judge's memory and its backlog are bounded, and an unjudged run says so --------

def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _judge_rss_mib(proxy_pid: int) -> float:
    """The resident memory of the proxy's judging process (the spawned pool worker)."""
    from pathlib import Path

    for child in _children(proxy_pid):
        cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmd:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    raise AssertionError("no judging process under the proxy")


def test_the_judges_memory_stays_bounded_by_distinct_large_bodies(tmp_path):
    """Distinct valid answers just under 1 MiB: the judge validates each, and what it remembers
    of them ("seen passing") is a digest, within a bound of bytes, not the bodies."""
    from tests.support.proxy import start_broken_target

    server = start_broken_target()
    try:
        proxy = start_proxy(server.url)
    except BaseException:
        server.stop()
        raise
    try:
        with httpx.Client(base_url=proxy.url, timeout=60,
                          headers={"X-Api-Key": "lp_test_full"}) as c:
            c.get(f"/v1/content/{NOT_REQUIRED}").raise_for_status()
            violations(proxy.url)
            before = _judge_rss_mib(proxy.pid)
            for i in range(150):
                r = c.get(f"/v1/content/{NOT_REQUIRED}",
                          headers={"X-Big-Body": str(900_000 + i)})
                assert r.status_code == 200
            found = violations(proxy.url)
            after = _judge_rss_mib(proxy.pid)
        assert found["server"] == [] and found["counts"]["checked"] == 151, found
        assert after - before < 80, f"the judge grew from {before:.0f} to {after:.0f} MiB"
    finally:
        server.stop()
        proxy.stop(signal.SIGTERM, timeout=60)


def _flood(url: str, n: int, concurrency: int, path: str) -> list[int]:
    async def run() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=60,
                                     headers={"X-Api-Key": "lp_test_full"},
                                     limits=httpx.Limits(max_connections=concurrency)) as c:
            async def one() -> int:
                async with gate:
                    try:
                        return (await c.get(path)).status_code
                    except httpx.TransportError:  # a kept-alive connection closed as reused
                        return -1
            return await asyncio.gather(*[one() for _ in range(n)])
    return asyncio.run(run())


def test_the_proxy_forgets_keys_with_the_targets_ttl():
    """A target that keeps keys for a second (the mock's --idempotency-ttl 1) answers a key
    reused after it with a fresh job. The proxy set like it (--idempotency-ttl 1) forgets the
    key too, so its memory holds only what the target keeps, and the fresh job is no
    violation; a proxy left at D6's 24 hours calls it one."""
    target = start_mock("--idempotency-ttl", "1")
    proxies = []
    try:
        proxies = [start_proxy(target.url, "--idempotency-ttl", "1"), start_proxy(target.url)]
        body = {"format": "video_remix", "brief": {"topic": "ttl"}}
        for proxy in proxies:
            key = {"Idempotency-Key": str(uuid.uuid4()), "X-Api-Key": "lp_test_full"}
            with httpx.Client(base_url=proxy.url, timeout=30, headers=key) as c:
                first = c.post(f"/v1/projects/{DEMO}/content", json=body)
                time.sleep(1.5)  # the target's own clock: real time in both processes
                again = c.post(f"/v1/projects/{DEMO}/content", json=body)
            assert first.status_code == again.status_code == 202
            assert "idempotent-replayed" not in again.headers  # the target forgot the key
            assert first.json()["jobId"] != again.json()["jobId"]
        set_like_target, default = (violations(p.url)["server"] for p in proxies)
        assert set_like_target == []
        assert [v["rule"] for v in default] == ["D6"], default
    finally:
        for proxy in proxies:
            proxy.stop(signal.SIGTERM, timeout=60)
        target.stop()


def test_the_backlog_bound_is_exact_and_a_mostly_unjudged_run_could_not_judge(mock, tmp_path):
    """Arrivals count against the bound as finished exchanges do; a run that left more than
    --max-unjudged percent unjudged says so first in every report and exits 2, never 0."""
    out = {s: tmp_path / f"proxy.{s}" for s in ("json", "md", "html", "xml")}
    proxy = start_proxy(mock.url, "--max-pending", "4", "--junit-xml", str(out["xml"]),
                        *[a for s in ("json", "md", "html") for a in ("--report", str(out[s]))])
    try:
        statuses = _flood(proxy.url, 300, 100, f"/v1/content/{NOT_REQUIRED}")
        answered = statuses.count(200)
        assert answered >= 295 and set(statuses) <= {200, -1}, statuses
        found = violations(proxy.url)
    finally:
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert found["maxPending"] == 4 and 0 < found["pendingPeak"] <= 4, found
    counts = found["counts"]
    assert answered <= counts["exchanges"] <= 300 and counts["unjudged"] > 3, counts
    assert counts["unjudged"] + counts.get("checked", 0) == counts["exchanges"]
    assert found["server"] == []
    assert code == 2, "".join(proxy.output)
    data = json.loads(out["json"].read_text())
    assert data["verdict"] == "could not judge" and data["exitStatus"] == 2
    assert data["unjudged"] == counts["unjudged"] and data["serverViolations"] == 0
    assert out["md"].read_text().split("\n")[2].startswith("COULD NOT JUDGE: ")
    assert "COULD NOT JUDGE" in out["html"].read_text()
    suite = ET.parse(out["xml"]).getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "1"
    assert "could not judge: " in "".join(proxy.output)


def test_the_judge_never_holds_more_than_its_bound(monkeypatch):
    """In process: arrivals and ends handed over at once never exceed MAX_PENDING, and every
    exchange is counted once, judged or not."""
    from layers_kit.conformance.proxy import judge as judge_mod
    from layers_kit.conformance.proxy.exchange import Exchange

    monkeypatch.setattr(judge_mod, "MAX_PENDING", 5)
    j = judge_mod.Judge("http://127.0.0.1:1")
    try:
        exchanges = [Exchange("POST", f"http://127.0.0.1:1/v1/content/{NOT_REQUIRED}/regenerate",
                              f"/v1/content/{NOT_REQUIRED}/regenerate",
                              [("X-Api-Key", "k"), ("Idempotency-Key", str(i))], b"{}", float(i))
                     for i in range(60)]
        for ex in exchanges:
            j.arrived(ex)
        assert j.snapshot()["pending"] <= 5  # arrivals count against the bound
        for ex in exchanges:
            ex.status, ex.ended = 202, 100.0
            ex.response_headers = [("Idempotent-Replayed", "true"), ("X-Request-Id", "req_1")]
            j.finished(ex)
        assert j.snapshot()["pending"] <= 5
        peak = j.snapshot()["pendingPeak"]
    finally:
        final = j.close()
    assert peak <= 5
    assert final["counts"]["exchanges"] == 60 and final["counts"]["unjudged"] >= 50
    # exchanges with a key went unseen: no replay is called "replayed on first use"
    assert final["server"] == [], final["server"]


def test_the_judge_is_handed_exchanges_in_batches_and_judges_every_one_in_order():
    """In process: a burst of hand-overs reaches the judge in far fewer batches than
    exchanges (one wake-up of the executor per exchange starved the judge in a soak), every
    exchange is judged, and in order: each key's arrival is seen before its replay is judged,
    so no replay is called "replayed on first use"."""
    from layers_kit.conformance.proxy import judge as judge_mod
    from layers_kit.conformance.proxy.exchange import Exchange

    j = judge_mod.Judge("http://127.0.0.1:1")
    try:
        exchanges = [Exchange("POST", f"http://127.0.0.1:1/v1/content/{NOT_REQUIRED}/regenerate",
                              f"/v1/content/{NOT_REQUIRED}/regenerate",
                              [("X-Api-Key", "k"), ("Idempotency-Key", str(i // 2))], b"{}",
                              float(i)) for i in range(1000)]
        for ex in exchanges:  # pairs with one key: a first use, then its replay
            j.arrived(ex)
            ex.status, ex.ended = 202, ex.started + 0.5
            ex.response_headers = [("X-Request-Id", "req_1")] + (
                [("Idempotent-Replayed", "true")] if int(ex.started) % 2 else [])
            j.finished(ex)
    finally:
        final = j.close()
    counts = final["counts"]
    assert counts["exchanges"] == 1000 and counts.get("unjudged", 0) == 0, counts
    assert counts["checked"] == 1000 and final["pending"] == 0
    assert 1 <= j.batches < 200, j.batches  # 2,000 hand-overs
    assert not [v for v in final["server"] if "first use" in json.dumps(v)], final["server"]


# ---- 10: the proxy's own guards: a read deadline and a bounded header section ---------------

def test_the_proxy_closes_slow_clients(mock):
    import socket
    import time
    from urllib.parse import urlsplit

    proxy = start_proxy(mock.url, "--read-timeout", "1")
    host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
    try:
        for request in (b"GET /v1/content/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
                        b"POST /v1/content/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Length: 10\r\n\r\n12"):  # a header, a body: never ended
            with socket.create_connection((host, port), timeout=15) as s:
                s.sendall(request)
                t0 = time.monotonic()
                assert s.recv(1024) == b""  # closed by the proxy
                assert time.monotonic() - t0 < 5
        # the proxy still serves
        r = httpx.get(proxy.url + f"/v1/content/{NOT_REQUIRED}",
                      headers={"X-Api-Key": "lp_test_full"}, timeout=30)
        assert r.status_code == 200
    finally:
        proxy.stop(signal.SIGTERM, timeout=60)


def test_the_proxy_refuses_a_huge_header_section_without_buffering_it(mock):
    import socket
    from urllib.parse import urlsplit

    proxy = start_proxy(mock.url)
    host, port = urlsplit(proxy.url).hostname, urlsplit(proxy.url).port
    try:
        with socket.create_connection((host, port), timeout=15) as s:
            s.sendall(b"GET /v1/content/x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(20):  # 200 KB of header lines, the section never ended
                s.sendall(b"X-Big: " + b"a" * 10_000 + b"\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 "), answer[:300]
        error = json.loads(body)["error"]
        assert error["code"] == "VALIDATION_FAILED"
        assert b"x-request-id: " + error["requestId"].encode() in head
        assert error["requestId"].startswith("req_") and len(error["requestId"]) == 30
        r = httpx.get(proxy.url + f"/v1/content/{NOT_REQUIRED}",
                      headers={"X-Api-Key": "lp_test_full"}, timeout=30)
        assert r.status_code == 200
    finally:
        proxy.stop(signal.SIGTERM, timeout=60)


# ---- 13, 14 and the risks: request targets, headers, the proxy's own endpoint ----------------

def _raw(url: str, request: bytes) -> bytes:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    return answer


def test_request_targets_headers_and_the_proxys_own_endpoint():
    from tests.support.proxy import start_broken_target

    server = start_broken_target()
    try:
        proxy = start_proxy(server.url)
    except BaseException:
        server.stop()
        raise
    try:
        # 13: `*` is no path: 400 in the envelope, never 500
        for method in (b"OPTIONS", b"GET"):
            answer = _raw(proxy.url, method + b" * HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              b"Connection: close\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == \
                "VALIDATION_FAILED"
        with httpx.Client(base_url=proxy.url, timeout=30,
                          headers={"X-Api-Key": "lp_test_full"}) as c:
            # 14: the target's Date and Server, once
            r = c.get(f"/v1/content/{NOT_REQUIRED}")
            assert r.status_code == 200
            assert len(r.headers.get_list("date")) == 1, r.headers
            assert r.headers.get_list("server") == ["uvicorn"], r.headers
            # hop-by-hop headers named in Connection go no further, either way
            r = c.get("/__echo", headers={"Connection": "keep-alive, X-Hop-In",
                                          "X-Hop-In": "secret", "X-End": "kept"})
            seen = {k.lower(): v for k, v in r.json()}
            assert "x-hop-in" not in seen and seen["x-end"] == "kept", seen
            assert "x-hop-out" not in r.headers and r.headers["x-end-to-end"] == "kept"
            found = violations(proxy.url)
            assert found["server"] == [], found["server"]
    finally:
        server.stop()
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert code == 0, "".join(proxy.output)


def test_the_proxys_own_endpoint_answers_its_own_host_names_only(mock):
    """A page whose name was rebound to the proxy's address cannot read /__proxy/."""
    proxy = start_proxy(mock.url, "--allow-host", "proxy.internal")
    port = httpx.URL(proxy.url).port
    try:
        with httpx.Client(base_url=proxy.url, timeout=30) as c:
            for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}",
                         f"[::1]:{port}", "proxy.internal"):
                r = c.get("/__proxy/violations", headers={"Host": host})
                assert r.status_code == 200 and "counts" in r.json(), host
            for host in (f"evil.example:{port}", "rebound.example"):
                r = c.get("/__proxy/violations", headers={"Host": host})
                assert r.status_code == 421, host
                assert r.json()["error"]["requestId"] == r.headers["x-request-id"]
    finally:
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert code == 0


def test_a_full_pool_and_a_slow_target_answer_quickly_and_are_notviolations(tmp_path):
    """Slow answers occupy the pool: the next request waits --pool-timeout, then gets 503 with
    Retry-After; an answer slower than --timeout is a 504; neither is a server violation."""
    import threading
    import time

    from tests.support.proxy import start_broken_target

    server = start_broken_target()
    try:
        proxy = start_proxy(server.url, "--max-connections", "2", "--pool-timeout", "0.5",
                            "--timeout", "3", "--report", str(tmp_path / "proxy.json"))
    except BaseException:
        server.stop()
        raise
    path = f"/v1/content/{NOT_REQUIRED}"
    headers = {"X-Api-Key": "lp_test_full"}
    try:
        slow = [threading.Thread(target=lambda: httpx.get(
            proxy.url + path, headers={**headers, "X-Slow": "2.5"}, timeout=30))
            for _ in range(2)]
        for t in slow:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        r = httpx.get(proxy.url + path, headers=headers, timeout=30)
        assert r.status_code == 503 and time.monotonic() - t0 < 2
        assert r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "INTERNAL"
        assert "no free connection" in r.json()["error"]["message"]
        for t in slow:
            t.join(30)
        r = httpx.get(proxy.url + path, headers={**headers, "X-Slow": "5"}, timeout=30)
        assert r.status_code == 504 and "timeout" in r.json()["error"]["message"].lower()
        found = violations(proxy.url)
        assert found["server"] == [] and found["transport"]["kinds"] == {"pool": 1,
                                                                          "timeout": 1}
    finally:
        server.stop()
        code = proxy.stop(signal.SIGTERM, timeout=60)
    assert code == 2
    data = json.loads((tmp_path / "proxy.json").read_text())
    assert data["serverViolations"] == 0 and data["transportFailures"] == 2
