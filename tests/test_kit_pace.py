"""The kit's pace on a rate-limited target ("Speed where users wait"): a throttled rate-limit
bucket is served in order, one request at a time (conformance/pacing.py); the checks share
containers made five at a time (context.ContainerPool); the Schemathesis phase sends the
job-start operations few positive cases and says so (schema_phase's job-start budget)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import subprocess
import threading
import time
from pathlib import Path

import httpx

from layers_kit.conformance import schema_phase as sp
from layers_kit.conformance.client import Client
from layers_kit.conformance.context import POOL_BATCH, ContainerPool
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.pacing import Line, Pacer
from tests.support import ids

BASE = "http://127.0.0.1:9"


def test_a_line_is_free_until_throttled_then_first_come_first_served():
    line = Line()
    assert line.join() is None  # never throttled: send at once
    first = line.throttle(None)
    second, third = line.join(), line.join()
    assert (first, second, third) == (0, 1, 2)
    assert line.is_head(first) and not line.is_head(second)
    assert line.wait_turn(second, 0.05) is None  # its turn did not come: it leaves the line
    line.leave(first)
    assert line.wait_turn(third, 1.0) is not None  # the second left: the third is next
    line.leave(third)
    assert not line.throttled and line.join() is None  # nobody waits: free again


def test_lines_are_per_base_url_key_and_class():
    pacer = Pacer()
    a = pacer.line(BASE, "k1", "job_start")
    assert a is pacer.line(BASE, "k1", "job_start")
    assert a is not pacer.line(BASE, "k2", "job_start")
    assert a is not pacer.line(BASE, "k1", "read")
    assert pacer.line(BASE, "k1", None) is None


class _Bucket:
    """A target with a job_start bucket of one token, refilled every `every` seconds; a 429
    says Retry-After: 1 (the client's sleep is scaled down)."""

    def __init__(self, every: float) -> None:
        self.every, self.last, self.lock = every, 0.0, threading.Lock()
        self.accepted: list[str] = []
        self.refused = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            now = time.monotonic()
            if now - self.last < self.every:
                self.refused += 1
                return httpx.Response(429, headers={"Retry-After": "1"},
                                      json={"error": {"code": "RATE_LIMITED", "message": "x",
                                                      "requestId": "req_1"}})
            self.last = now
            self.accepted.append(request.headers["x-who"])
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "x",
                                                   "requestId": "req_1"}})


def test_a_throttled_bucket_serves_waiting_checks_in_turn_without_a_stampede():
    bucket = _Bucket(every=0.05)
    pacer, contract = Pacer(), Contract(BASE)
    path = f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"

    def one(who: int) -> int:
        c = Client(BASE, ids.FULL, contract, [], transport=httpx.MockTransport(bucket),
                   sleep=lambda d: time.sleep(d / 20), pacer=pacer, max_wait=60)
        try:
            return c.post(path, json={}, headers={"x-who": str(who)}).status_code
        finally:
            c.close()

    with cf.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(8)))
    assert statuses == [404] * 8 and len(bucket.accepted) == 8
    # one request at a time once throttled: about one 429 per token, not one per waiter
    assert 0 < bucket.refused <= 3 * 8, bucket.refused
    assert not pacer.line(BASE, ids.FULL, "job_start").throttled


class _Ctx:
    def __init__(self) -> None:
        self.batches = 0

    def generate_batch(self, n: int) -> list[str]:
        self.batches += 1
        return [f"cnt_{self.batches}_{i}" for i in range(n)]


def test_the_pool_hands_each_container_to_one_check_five_per_job_start():
    pool, ctx = ContainerPool(), _Ctx()
    with cf.ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda _: pool.take(ctx), range(POOL_BATCH + 2)))
    assert len(set(got)) == POOL_BATCH + 2  # never the same container twice
    assert ctx.batches == pool.made == 2


def test_the_schema_phase_budgets_job_starts_and_says_so(monkeypatch):
    seen: dict = {}

    def fake_run(cmd, **kw):
        seen.update(env=kw["env"], config=Path(cmd[cmd.index("--config-file") + 1]).read_text(),
                    hooks=Path(kw["env"]["SCHEMATHESIS_HOOKS"]).read_text())
        Path(cmd[cmd.index("--report-har-path") + 1]).write_text('{"log": {"entries": []}}')
        Path(cmd[cmd.index("--report-junit-path") + 1]).write_text("<testsuites/>")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(sp.subprocess, "run", fake_run)
    res = sp.run_schemathesis(BASE, "lp_secret_key_123", contract=Contract(BASE),
                              prepare=False, raise_unjudged=False, timeout=100)
    assert set(sp.job_start_operations(Contract(BASE))) == {"generateContent",
                                                            "regenerateContent"}
    for op in ("generateContent", "regenerateContent"):
        assert (f'include-operation-id = "{op}"\ngeneration = {{ max-examples = '
                f"{sp.JOB_START_EXAMPLES} }}") in seen["config"]
    assert set(json.loads(seen["env"]["LAYERS_SCHEMA_JOB_STARTS"])) == {
        "POST /v1/projects/{projectId}/content", "POST /v1/content/{containerId}/regenerate"}
    assert "def filter_case" in seen["hooks"]
    assert res.limits and "Limited by the kit: job-start budget" in res.message
    assert "every negative case sent" in res.message

    seen.clear()
    res = sp.run_schemathesis(BASE, "lp_secret_key_123", contract=Contract(BASE),
                              prepare=False, raise_unjudged=False, timeout=100,
                              job_start_budget=False)
    assert "max-examples" not in seen["config"] and not res.limits
    assert json.loads(seen["env"]["LAYERS_SCHEMA_JOB_STARTS"]) == []


def test_a_refused_batch_falls_back_to_a_container_of_the_check_s_own():
    from layers_kit.conformance.failures import Inconclusive

    class Refusing(_Ctx):
        def generate_batch(self, n: int) -> list[str]:
            raise Inconclusive("402 BILLING_EXHAUSTED for five variants")

        def generate(self) -> str:
            return "cnt_single"

    pool = ContainerPool()
    assert pool.take(Refusing()) == "cnt_single" and pool.made == 0


def test_a_throttled_line_tells_the_schema_phase_to_hold_back(tmp_path):
    pacer = Pacer(tmp_path)
    a = pacer.line(BASE, "k1", "job_start")
    b = pacer.line(BASE, "k2", "job_start")
    first = a.throttle(None)
    assert (tmp_path / "job_start").exists()
    second = b.throttle(None)
    a.leave(first)
    assert (tmp_path / "job_start").exists()  # another line of the class still waits
    b.leave(second)
    assert not (tmp_path / "job_start").exists()
    assert "def _yield(cls)" in sp.HOOKS and "LAYERS_SCHEMA_YIELD" in sp.HOOKS


def test_checks_that_need_requests_together_start_first():
    from layers_kit.conformance.registry import all_checks

    burst = {c.name for c in all_checks() if c.burst}
    assert burst == {"d6_concurrent_duplicates", "r10_busy_conflict"}
