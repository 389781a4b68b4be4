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
from collections import Counter
from pathlib import Path

import httpx

from layers_kit.conformance import schema_phase as sp
from layers_kit.conformance.client import Client
from layers_kit.conformance.context import POOL_BATCH, ContainerPool
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.pacing import Line, Pacer
from layers_kit.conformance.secrets import mask
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


# --- more keys (--extra-api-key): job starts spread over keys, each with its own buckets ---

def test_extra_keys_come_from_the_command_line_or_the_environment():
    from layers_kit.conformance import cli, options

    args = cli.parser().parse_args(["run", "--base-url", "http://x", "--api-key", "k0",
                                    "--extra-api-key", "k1", "--extra-api-key", "k2"])
    assert options.resolve(options.given_args(args), {}).target().extra_api_keys == ("k1", "k2")
    env = {"LAYERS_BASE_URL": "http://x", "LAYERS_API_KEY": "k0",
           "LAYERS_EXTRA_API_KEYS": " k1, k2\nk3 "}
    target = options.resolve({}, env).target()
    assert target.extra_api_keys == ("k1", "k2", "k3")
    assert options.resolve({"extra_api_keys": ("k1", "", " ")}, {"LAYERS_EXTRA_API_KEYS": ","}) \
        .extra_api_keys == ("k1",)  # empty items are no keys


def test_the_checks_and_the_phase_share_a_key_only_when_there_is_one():
    from layers_kit.conformance.target import Target

    def shares(n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return Target(BASE, "k0", extra_api_keys=tuple(f"k{i}" for i in range(1, n))) \
            .key_shares()

    assert shares(1) == (("k0",), ("k0",))
    assert shares(2) == (("k0",), ("k1",))
    assert Target(BASE, "k0", extra_api_keys=("k1", "k2")).key_shares(phase=False) == (
        ("k0", "k1", "k2"), ("k0", "k1", "k2"))  # no phase: the checks have them all
    checks, phase = shares(9)  # the phase sends about three job starts in four
    assert checks == ("k0", "k1") and phase == tuple(f"k{i}" for i in range(2, 9))
    for n in range(2, 13):
        checks, phase = shares(n)
        assert checks[0] == "k0" and checks and phase and not set(checks) & set(phase)
        assert set(checks) | set(phase) == {f"k{i}" for i in range(n)}
    # a key given twice is one key (one set of buckets)
    assert Target(BASE, "k0", extra_api_keys=("k0",)).key_shares() == (("k0",), ("k0",))


def _hooks(monkeypatch, keys: list[str]) -> dict:
    """The phase's hooks module, loaded as Schemathesis loads it, with the phase's keys and
    the contract's rate-limit classes; its sends recorded instead of sent."""
    contract = Contract(BASE)
    for name, value in {"LAYERS_SCHEMA_FUTURE": sp.future_date(), "LAYERS_SCHEMA_KEYS":
                        json.dumps(keys), "LAYERS_SCHEMA_CLASSES":
                        json.dumps(sp._classes(contract))}.items():
        monkeypatch.setenv(name, value)
    import requests
    import schemathesis

    real = requests.Session.send
    ns: dict = {}
    monkeypatch.setattr(schemathesis, "hook", lambda fn: fn)  # registers nothing in pytest
    try:
        exec(compile(sp.HOOKS, "layers_hooks.py", "exec"), ns)
    finally:
        patched, requests.Session.send = requests.Session.send, real
    sent: list = []
    ns["_send"] = lambda session, request, **kw: sent.append(
        (request.method, request.url, request.headers.get("X-Api-Key")))
    ns["sent"], ns["send"] = sent, lambda req: patched(None, req.prepare())
    return ns


def test_the_phase_sends_each_request_with_a_key_whose_bucket_is_open(monkeypatch):
    import requests

    hooks = _hooks(monkeypatch, ["kA", "kB", "kC"])
    regenerate = f"{BASE}/prefix/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"

    def post(key: str | None = "kA", url: str = regenerate) -> str | None:
        headers = {"X-Api-Key": key} if key else {}
        hooks["send"](requests.Request("POST", url, headers=headers, json={}))
        return hooks["sent"][-1][2]

    assert [post() for _ in range(4)] == ["kA", "kB", "kC", "kA"]  # in turn, per class
    hooks["_blocked"][("kB", "job_start")] = time.monotonic() + 60  # kB answered 429
    assert [post() for _ in range(3)] == ["kC", "kA", "kC"]
    assert hooks["_wait_for"]("job_start") < 0  # kA and kC are open: no wait
    for k in ("kA", "kC"):
        hooks["_blocked"][(k, "job_start")] = time.monotonic() + 30
    assert 25 < hooks["_wait_for"]("job_start") <= 30  # the soonest key to open
    assert post() == "kA"  # all closed: the one open soonest (kA and kC tie, kA first)
    # Schemathesis' auth probes and requests of no known class go as they were generated
    assert post("lp_not_ours") == "lp_not_ours" and post(None) is None
    assert post("kA", f"{BASE}/v1/not-an-operation") == "kA"
    # another class has its own turn: light writes start from the first key again
    approve = f"{BASE}/v1/content/{ids.CNT_NOT_REQUIRED}/approve"
    assert [post("kA", approve) for _ in range(2)] == ["kA", "kB"]
    assert hooks["_facts"]["perKey"] == {"0": 4, "1": 1, "2": 3}  # job starts only


def test_one_key_is_never_rewritten(monkeypatch):
    import requests

    hooks = _hooks(monkeypatch, ["kA"])
    url = f"{BASE}/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"
    hooks["send"](requests.Request("POST", url, headers={"X-Api-Key": "kA"}, json={}))
    assert hooks["sent"] == [("POST", url, "kA")] and hooks["_facts"]["perKey"] == {}


def test_a_run_with_extra_keys_spreads_its_job_starts_and_never_shows_a_key(tmp_path):
    """The real kit against the real mock, with five more keys of the Demo org: the checks take
    the first two keys in turn, the Schemathesis phase the other four, and the mock's journal
    sees job starts from all six; no report or output holds a key unmasked."""
    from tests.support.fixtures import write_fixtures
    from tests.support.process import run_kit, start_mock

    extra = [f"pace{i}_extra_key_for_the_kit" for i in range(1, 6)]  # distinct when masked
    fixtures = write_fixtures(tmp_path / "fixtures.yaml", extra)
    mock = start_mock("--stage-seconds", "0.1", "--fixtures", str(fixtures))
    try:
        report = tmp_path / "run.json"
        out = run_kit(
            "--base-url", mock.url, "--project-id", ids.PRJ_AUTO, "--only", "R1", "--only", "D6",
            "--only", "SCHEMA", "--quick", "--poll-interval", "0.08", "--job-timeout", "60",
            "--report", str(report), cwd=tmp_path,
            env={"LAYERS_API_KEY": ids.FULL, "LAYERS_EXTRA_API_KEYS": ",".join(extra)})
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        with mock.client() as c:
            journal = c.get("/__mock/requests", params={"limit": 1000}).json()["requests"]
    finally:
        mock.stop()
    starts = Counter(e["key"] for e in journal if e["key"]  # None: the checks' no-key cases
                     and e["operationId"] in ("generateContent", "regenerateContent"))
    masked = {k: mask(k) for k in (ids.FULL, *extra)}
    assert set(starts) == set(masked.values()), starts  # every key started jobs
    texts = [out.stdout, out.stderr, report.read_text(encoding="utf-8"),
             *(p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.iterdir()
               if p.suffix in (".har", ".xml", ".md"))]
    for key in masked:
        assert not any(key in t for t in texts), key
    assert "job-start requests per key of the phase" in report.read_text(encoding="utf-8")


# --- the policy checks in a project of their own (--policy-project-id) --------------------

def test_policy_checks_in_a_project_of_their_own_run_alongside_the_others(live, monkeypatch):
    import dataclasses

    from layers_kit.conformance import runner
    from layers_kit.conformance.registry import Check
    from layers_kit.conformance.target import Target

    started, seen, lock = threading.Event(), {}, threading.Lock()
    inside = [0]  # policy checks running at this moment

    def changes_the_policy(ctx) -> None:
        with lock:
            inside[0] += 1
            seen.setdefault("policy checks at once", set()).add(inside[0])
        seen.setdefault("policy checks' projects", set()).add(ctx.project)
        started.set()
        time.sleep(0.2)
        with lock:
            inside[0] -= 1

    def other(ctx) -> None:
        seen["other check's project"] = ctx.project
        seen["alongside"] = started.wait(3)  # a policy check started while this one runs

    checks = [Check("R1", "other", other, needs=("project",)),
              Check("R8", "policy", changes_the_policy, needs=("project",), exclusive=True),
              Check("D16", "policy_too", changes_the_policy, needs=("project",),
                    exclusive=True)]
    monkeypatch.setattr(runner, "select", lambda only: checks)
    target = Target(live.url, ids.FULL, project_id=ids.PRJ_AUTO,
                    policy_project_id=ids.PRJ_REVIEW_ALL)
    assert runner.run(target, schemathesis=False).exit_code == 0
    assert seen == {"policy checks' projects": {ids.PRJ_REVIEW_ALL}, "policy checks at once":
                    {1}, "other check's project": ids.PRJ_AUTO, "alongside": True}
    for alone in (dataclasses.replace(target, policy_project_id=None),  # no project of theirs
                  dataclasses.replace(target, policy_project_id=ids.PRJ_AUTO)):  # the same
        started.clear()
        seen.clear()  # they run alone, one after another, after the others, in --project-id
        assert runner.run(alone, schemathesis=False).exit_code == 0
        assert seen == {"policy checks' projects": {ids.PRJ_AUTO}, "policy checks at once":
                        {1}, "other check's project": ids.PRJ_AUTO, "alongside": False}
    started.clear()
    seen.clear()  # --jobs 1: one check at a time, in their own project still
    assert runner.run(target, schemathesis=False, jobs=1).exit_code == 0
    assert seen["alongside"] is False and seen["policy checks' projects"] == {
        ids.PRJ_REVIEW_ALL}


def test_a_policy_project_of_another_org_is_a_usage_error(live):
    from layers_kit.conformance.runner import UsageError, run
    from layers_kit.conformance.target import Target

    for target, says in ((Target(live.url, ids.FULL, project_id=ids.PRJ_AUTO,
                                 policy_project_id=ids.PRJ_OTHER), ids.PRJ_OTHER),
                         (Target(live.url, ids.FULL, container_ids=(ids.CNT_NOT_REQUIRED,),
                                 policy_project_id=ids.PRJ_REVIEW_ALL), "needs --project-id")):
        try:
            run(target, only=["R1"], schemathesis=False)
        except UsageError as exc:
            assert "--policy-project-id" in str(exc) and says in str(exc), str(exc)
        else:
            raise AssertionError("a project the key cannot see must stop the run")


def test_the_real_policy_checks_change_only_their_project_and_restore_it(tmp_path):
    from tests.support.process import run_kit, start_mock

    mock = start_mock("--stage-seconds", "0.1")
    try:
        with mock.client() as c:
            before = {p: c.get(f"/v1/projects/{p}/content-review-policy").json()
                      for p in (ids.PRJ_AUTO, ids.PRJ_REVIEW_ALL)}
        out = run_kit(
            "--base-url", mock.url, "--project-id", ids.PRJ_AUTO, "--policy-project-id",
            ids.PRJ_REVIEW_ALL, "--only", "R8", "--only", "D16", "--only", "R1",
            "--no-schemathesis", "--poll-interval", "0.08", "--job-timeout", "60",
            cwd=tmp_path, env={"LAYERS_API_KEY": ids.FULL})
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        assert "✗" not in out.stdout and out.stdout.count("✓") >= 5, out.stdout
        with mock.client() as c:
            journal = c.get("/__mock/requests", params={"limit": 1000}).json()["requests"]
            after = {p: c.get(f"/v1/projects/{p}/content-review-policy").json()
                     for p in before}
    finally:
        mock.stop()
    changed = {e["path"] for e in journal if e["operationId"] == "updateReviewPolicy"}
    assert changed == {f"/v1/projects/{ids.PRJ_REVIEW_ALL}/content-review-policy"}
    def policy(doc: dict) -> dict:
        return {k: doc.get(k) for k in ("policy", "firstN")}

    assert {p: policy(d) for p, d in after.items()} == {p: policy(d) for p, d in before.items()}


def test_an_extra_key_that_cannot_stand_in_for_the_api_key_is_a_usage_error(live):
    """A key of another org, one without a scope a check needs, or a refused one would fail
    the checks spread over it on its refusals: the run stops before any check, naming the
    key's place and the answer that differs, never the key."""
    from layers_kit.conformance.runner import UsageError, run
    from layers_kit.conformance.target import Target

    for extra, says in (((ids.OTHER,), "getReviewPolicy answers 404 to it and 200 to "
                                       "--api-key"),
                        ((ids.FULL, ids.READONLY), "number 1 cannot stand in for --api-key: "
                                                   "regenerateContent answers 403 to it and "
                                                   "404 to --api-key"),
                        (("lp_no_such_key_at_all",), "refuses --extra-api-key number 1")):
        target = Target(live.url, ids.FULL, project_id=ids.PRJ_AUTO,
                        extra_api_keys=extra)
        try:
            run(target, only=["R1"], schemathesis=False)
        except UsageError as exc:
            assert says in str(exc), str(exc)
            assert extra[0] not in str(exc)  # the key itself is never shown
        else:
            raise AssertionError(f"{extra} must stop the run")
    with live.client() as c:  # the probes changed nothing: no job, no post
        journal = c.get("/__mock/requests", params={"limit": 1000}).json()["requests"]
    assert not [e for e in journal if e["status"] in (200, 201, 202) and e["operationId"]
                not in ("getReviewPolicy", "getContent")]


def test_a_refused_request_waits_only_until_another_of_the_phase_s_keys_is_open(monkeypatch):
    import requests

    hooks = _hooks(monkeypatch, ["kA", "kB"])
    regenerate = f"{BASE}/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"

    def refused(key: str, url: str = regenerate) -> requests.PreparedRequest:
        return requests.Request("POST", url, headers={"X-Api-Key": key}, json={}).prepare()

    retry = hooks["_retry_delay"]
    assert retry(refused("kA"), "job_start", 20) == 0  # kB is open: again at once, with kB
    assert 19 < hooks["_blocked"][("kA", "job_start")] - time.monotonic() <= 20
    assert 9 < retry(refused("kB"), "job_start", 10) <= 10  # both closed: the soonest
    # a key Schemathesis chose itself, or a request of no known class, keeps its key: the
    # whole Retry-After
    assert retry(refused("lp_generated"), "job_start", 5) == 5
    assert retry(refused("kA", f"{BASE}/v1/not-an-operation"), "job_start", 7) == 7
    one = _hooks(monkeypatch, ["kA"])["_retry_delay"]
    assert one(refused("kA"), "job_start", 3) == 3  # one key: nothing else to try


def test_the_plan_says_how_the_keys_are_shared():
    from layers_kit.conformance import options
    from layers_kit.conformance.plan import plan_lines

    given = {"base_url": BASE, "api_key": "k0", "project_id": ids.PRJ_AUTO,
             "extra_api_keys": ("k1", "k2", "k3")}
    text = "\n".join(plan_lines(options.resolve(given, {})))
    assert "Keys: the checks share 1 (--api-key first" in text
    assert "the Schemathesis phase 3" in text and "k1" not in text
    alone = "\n".join(plan_lines(options.resolve({**given, "schemathesis": False}, {})))
    assert "Keys: the checks share 4 (" in alone and ", the Schemathesis phase" not in alone


def test_a_negative_schedule_body_keeps_its_invalid_date(monkeypatch):
    """The phase dates every scheduleContent body a year ahead, but a body Schemathesis made
    invalid keeps a scheduledFor that is not a date-time: dating it made the case valid, the
    target rightly accepted it, and Schemathesis reported ST201 against a correct target."""
    from enum import Enum
    from types import SimpleNamespace as NS

    Location = Enum("Location", "BODY HEADER")  # as schemathesis' ParameterLocation
    hooks = _hooks(monkeypatch, ["kA"])
    future = hooks["FUTURE"]

    def sent(body: dict | str, body_mode: str | None) -> object:
        meta = None if body_mode is None else NS(components={
            Location.BODY: NS(mode=NS(value=body_mode)),
            Location.HEADER: NS(mode=NS(value="negative"))})
        case = NS(headers={}, media_type="application/json", method="POST",
                  path="/v1/content/{containerId}/schedule", body=body, meta=meta,
                  operation=NS(label="POST /v1/content/{containerId}/schedule"))
        hooks["before_call"](None, case, {})
        return case.body

    near = "2026-12-07T09:00:00Z"
    assert sent({"scheduledFor": near}, None) == {"scheduledFor": future}
    assert sent({"scheduledFor": near}, "positive") == {"scheduledFor": future}
    for invalid in (None, 3, "2020-01-01", "2020-13-01T00:00:00Z", "soon"):
        assert sent({"scheduledFor": invalid}, "negative") == {"scheduledFor": invalid}
    # negative elsewhere in the body: a valid date is still moved a year ahead
    assert sent({"scheduledFor": near, "x": 1}, "negative") == {"scheduledFor": future, "x": 1}
    assert sent("not an object", "negative") == {"scheduledFor": future,
                                                 "notAField": "not an object"}
