"""Schema conformance: Schemathesis with its phases and every built-in check (D10, SCHEMA).

Run as the `schemathesis` CLI in a subprocess, so the kit gets exactly the behaviour users know
from the CLI. Keys never reach its command line (where `ps` shows them): the generated config
reads them from the subprocess's environment, and the config sits in a private (0700) temporary
folder as a 0600 file. Schemathesis runs in that folder, so no `.hypothesis/` or
`.schemathesis/` is left in the caller's working folder. Its JUnit report and its HAR (keys
masked) are kept next to the kit's reports when there are any; failures, the statuses it saw
per operation and what it spent are read back from them.

What makes the phase really exercise the write operations (hooks Schemathesis loads from the
same private folder, `HOOKS` below):

- a fresh `Idempotency-Key` (a UUID) on every generated request that carries a valid one: the
  phase never means a replay, and the contract's example key on every request made most
  writes meet `409 IDEMPOTENCY_CONFLICT`. Keys that break the contract (empty, too long, not
  printable ASCII) are left as generated: they test validation and are never stored;
- pacing: a `429` is waited out as its `Retry-After` says and the same request sent again (a
  429 is not stored for idempotency, so the same key runs it), and the next request of the
  same endpoint class (`X-RateLimit-Endpoint-Class`) waits until the bucket is open again;
  both only while the run's time budget lasts (`timeout`; the pacing stops at
  `PACING_SHARE` of it, so Schemathesis finishes on its own and the 429s left are reported);
- every `scheduleContent` body is dated `FUTURE_DAYS` ahead (a past `scheduledFor` means
  "publish as soon as possible" on a real server): a generated object body gets that
  `scheduledFor` (but a body made invalid on purpose keeps a `scheduledFor` that is not a
  date-time: it is refused, and dated it would be valid), anything else is wrapped into one
  that has it (still refused: the field `notAField` breaks the schema);
- with a project, resources of its own (`prepare_resources`): an approved container for
  `approveContent` and `scheduleContent`, a job for `getJob` and `cancelJob`, a post for
  `getScheduledPost`, so that each operation can reach its 2xx.

The verdict (`SchemaResult.verdict`): `failed` when Schemathesis found a response outside the
contract (transport trouble is never that); `inconclusive` when the target stopped answering,
the run ran out of time, a write operation was never accepted (no 2xx), a `409
IDEMPOTENCY_CONFLICT` came back that the phase did not intend, or Schemathesis warned that
logic went untested (its warnings are carried into the message); `error` when Schemathesis
could not run at all; `passed` otherwise. `tally` counts what each operation reached (2xx,
each 4xx by code, 429s left and waited out, 5xx); `tally_lines` prints it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from layers_kit.conformance import tls
from layers_kit.conformance.contract import Contract, spec_path
from layers_kit.conformance.observations import Spend, created_by, spend_of
from layers_kit.conformance.secrets import mask
from layers_kit.contract import spec
from layers_kit.contract.operations import template_regex

PROFILES = {
    "quick": {"phases": "fuzzing", "max_examples": 5},
    "default": {"phases": "examples,coverage,fuzzing,stateful", "max_examples": 10},
}
KEY_ENV = "LAYERS_CONFORMANCE_API_KEY"
KEYS_ENV = "LAYERS_SCHEMA_KEYS"  # every key of the phase (JSON), KEY_ENV's first
FUTURE_DAYS = 400  # every post the phase schedules is dated at least this far ahead
PACING_SHARE = 0.8  # of the time budget, after which 429s are no longer waited out
# The job-start budget: operations of the spec's rate-limit class `job_start`
# (`x-rate-limit-class`; generateContent and regenerateContent) start a job with every
# accepted request, and a target limits them hardest (D13: 20 a minute per key on the
# standard tier), so the phase sends them few positive cases: the examples phase (the spec's
# examples), at most JOB_START_EXAMPLES in each of fuzzing and stateful, and the first
# COVERAGE_POSITIVES positive cases of the coverage phase (a `filter_case` hook drops the rest:
# each one a job start, most of them answered 409 CONFLICT by a container still busy with the
# last or by an id already taken). Every negative case of every phase is kept. Other
# operations are generated as before.
JOB_START_CLASS = "job_start"
JOB_START_EXAMPLES = 3
COVERAGE_POSITIVES = 2
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PASSED, FAILED, INCONCLUSIVE, ERROR = "passed", "failed", "inconclusive", "error"

# A run in which every call is a 401 would pass without `missing_auth`.
_CONFIG = """
headers = {{ "X-Api-Key" = "${{{env}}}" }}

[warnings]
fail-on = ["missing_auth"]
{parameters}{operations}
"""

# Schemathesis' warnings that say some logic behind an operation went untested.
UNTESTED_WARNINGS = ("rate limited", "missing test data", "validation mismatch",
                     "low valid rate")
# What a failure or an error of Schemathesis says when the target did not answer at all.
_TRANSPORT = re.compile(r"Network Error|ConnectionError|Connection refused|Connection reset|"
                        r"Connection aborted|RemoteDisconnected|Read timed out|ReadTimeout|"
                        r"ConnectTimeout|Max retries exceeded|ChunkedEncodingError",
                        re.IGNORECASE)

HOOKS = r'''
"""Hooks of the kit's Schemathesis phase (written by layers_kit.conformance.schema_phase)."""
import atexit, datetime, json, os, re, threading, time, urllib.parse, uuid
from email.utils import parsedate_to_datetime

import requests
import schemathesis
from schemathesis.core.transport import Response

DEADLINE = float(os.environ.get("LAYERS_SCHEMA_DEADLINE") or 0) or None
FUTURE = os.environ["LAYERS_SCHEMA_FUTURE"]
FACTS = os.environ.get("LAYERS_SCHEMA_FACTS")
JOB_STARTS = set(json.loads(os.environ.get("LAYERS_SCHEMA_JOB_STARTS") or "[]"))
YIELD = os.environ.get("LAYERS_SCHEMA_YIELD")  # the kit's checks wait on a class: hold back
COVERAGE_POSITIVES = int(os.environ.get("LAYERS_SCHEMA_COVERAGE_POSITIVES") or 0)
KEYS = json.loads(os.environ.get("LAYERS_SCHEMA_KEYS") or "[]")  # the first is the config's
# [METHOD, a pattern matching the end of a URL's path (any path prefix), rate-limit class]
ROUTES = json.loads(os.environ.get("LAYERS_SCHEMA_CLASSES") or "[]")
_lock = threading.Lock()
_blocked = {}   # (key, endpoint class) -> time.monotonic() when its bucket is open again
_class_of = {}  # operation label -> endpoint class (X-RateLimit-Endpoint-Class)
_facts = {"keys": 0, "dated": 0, "waited": {}, "waitedSeconds": 0.0, "unwaited": {},
          "network": {}, "positives": {}, "yieldedSeconds": 0.0, "perKey": {}}
_turn = {}  # endpoint class -> the index of the next key to try, round robin


_ROUTES = [(method, re.compile(pattern), cls) for method, pattern, cls in ROUTES]


def _class_for(method, url):
    """The rate-limit class of a request (the contract's x-rate-limit-class), or None."""
    path = urllib.parse.urlsplit(url).path
    return next((cls for m, pattern, cls in _ROUTES
                 if method.upper() == m and pattern.search(path)), None)


def _wait_for(cls):
    """Seconds until one of the phase's keys may send on `cls`: the soonest to open."""
    return min(_blocked.get((k, cls), 0) for k in KEYS or [""]) - time.monotonic()


def _retry_delay(request, cls, delay):
    """The seconds to wait before sending a request again that got 429 with Retry-After
    `delay`: its key's bucket of `cls` is closed that long; when the key is one of the phase's
    and the request's class is known (it goes out again with the key `_pick` chooses), only
    until the soonest of its keys opens, else the whole Retry-After."""
    key = request.headers.get("X-Api-Key") or ""
    _blocked[(key, cls)] = time.monotonic() + delay
    if len(KEYS) > 1 and key in KEYS and _class_for(request.method or "", request.url or ""):
        return max(0.0, _wait_for(cls))
    return delay


def _pick(cls):
    """The key for the next request of `cls`: the next in turn whose bucket has not answered
    429 (or has waited it out); if all have, the one open soonest."""
    now = time.monotonic()
    with _lock:
        n = len(KEYS)
        order = [KEYS[(_turn.get(cls, 0) + i) % n] for i in range(n)]
        key = next((k for k in order if _blocked.get((k, cls), 0) <= now),
                   min(order, key=lambda k: _blocked.get((k, cls), 0)))
        index = KEYS.index(key)
        _turn[cls] = (index + 1) % n
        if cls == "job_start":
            _facts["perKey"][str(index)] = _facts["perKey"].get(str(index), 0) + 1
    return key


_send = requests.Session.send


def _spread(session, request, **kwargs):
    """A request sent with one of the phase's keys (the config's, or another on a retry after
    429) goes out with the key `_pick` chooses for its rate-limit class (each key has its own
    buckets); a request that names another key or none (Schemathesis' auth probes) goes as it
    was generated. Patched at `requests.Session.send` because the config's header is merged
    after the `before_call` hook, which cannot see it."""
    if len(KEYS) > 1 and request.headers.get("X-Api-Key") in KEYS:
        cls = _class_for(request.method or "", request.url or "")
        if cls:
            request.headers["X-Api-Key"] = _pick(cls)
    return _send(session, request, **kwargs)


requests.Session.send = _spread


def _yield(cls):
    """While the kit's checks wait their turn on this class (the kit's pacer keeps a file
    named after it), hold back: they go first. Bounded by the time budget."""
    if not (YIELD and cls):
        return
    marker, started = os.path.join(YIELD, cls), time.monotonic()
    while os.path.exists(marker):
        left = _left()
        if left is not None and left < 60:
            break
        time.sleep(0.2)
    if time.monotonic() - started > 0.01:
        with _lock:
            _facts["yieldedSeconds"] += time.monotonic() - started


def _left():
    return None if DEADLINE is None else DEADLINE - time.time()


def _bump(kind, label):
    with _lock:
        _facts[kind][label] = _facts[kind].get(label, 0) + 1


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _dated_safely(case):
    """Whether to date a scheduleContent body FUTURE: always, unless Schemathesis made the
    body invalid on purpose (a negative body) and its scheduledFor is not a date-time, which
    may be the very thing it made invalid: dating it would turn the case into a valid request
    that the target rightly accepts, and Schemathesis would report ST201 against a correct
    target (seen: `scheduledFor: null`). Such a body is refused, so it schedules nothing."""
    meta = case.meta
    negative = meta is not None and any(
        getattr(loc, "name", str(loc)).lower() == "body" and
        str(getattr(info.mode, "value", info.mode)) == "negative"
        for loc, info in (meta.components or {}).items())
    if not negative:
        return True
    value = case.body.get("scheduledFor")
    if not (isinstance(value, str) and _DATE_TIME.fullmatch(value)):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _printable(value):
    return isinstance(value, str) and 1 <= len(value) <= 255 and \
        all(32 <= ord(ch) < 127 for ch in value)


def _retry_after(response):
    values = response.headers.get("retry-after") or []
    value = values[0] if isinstance(values, list) and values else values
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 1.0


@schemathesis.hook
def filter_case(context, case):
    """The job-start budget: past COVERAGE_POSITIVES positive coverage cases of a job-start
    operation, drop the positive ones (the negative ones all go)."""
    label = case.operation.label
    meta = case.meta
    if label not in JOB_STARTS or meta is None or str(meta.phase.name) != "coverage" or \
            str(meta.generation.mode) != "positive":
        return True
    with _lock:
        sent = _facts["positives"].get(label, 0)
        if sent < COVERAGE_POSITIVES:
            _facts["positives"][label] = sent + 1
            return True
    return False


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if headers:
        for name in list(headers):
            if name.lower() == "idempotency-key" and _printable(headers[name]):
                headers[name] = str(uuid.uuid4())
                with _lock:
                    _facts["keys"] += 1
    media = (case.media_type or "application/json").lower()
    if case.method.upper() == "POST" and case.path.endswith("/schedule") and "json" in media:
        dated = True
        if isinstance(case.body, dict):
            dated = _dated_safely(case)
            if dated:
                case.body["scheduledFor"] = FUTURE
        else:
            body = case.body if isinstance(case.body, (list, str, int, float, bool)) else None
            case.body = {"scheduledFor": FUTURE, "notAField": body}
        if dated:
            with _lock:
                _facts["dated"] += 1
    cls = _class_of.get(case.operation.label)
    if cls:
        wait, left = _wait_for(cls), _left()
        if wait > 0 and (left is None or wait < left * 0.5):
            time.sleep(wait)
        _yield(cls)


@schemathesis.hook
def after_call(context, case, response):
    label = case.operation.label
    names = response.headers.get("x-ratelimit-endpoint-class") or []
    cls = names[0] if isinstance(names, list) and names else None
    if cls:
        _class_of[label] = cls
    tries = 0
    while response.status_code == 429 and tries < 10:
        delay, left = _retry_after(response), _left()
        if left is not None and delay + 1 > left:
            _bump("unwaited", label)
            return
        if cls:
            delay = _retry_delay(response.request, cls, delay)
        time.sleep(delay)
        with _lock:
            _facts["waitedSeconds"] += delay
        _bump("waited", label)
        _yield(cls)
        try:
            with requests.Session() as session:
                raw = session.send(response.request, timeout=30, verify=response.verify)
        except requests.RequestException:
            _bump("network", label)
            return
        fresh = Response.from_requests(raw, verify=response.verify)
        for slot in Response.__slots__:
            if hasattr(fresh, slot):
                setattr(response, slot, getattr(fresh, slot))
            elif hasattr(response, slot):
                delattr(response, slot)
        tries += 1


@schemathesis.hook
def after_network_error(context, case, request):
    _bump("network", case.operation.label)


@atexit.register
def _write():
    if FACTS:
        with open(FACTS, "w", encoding="utf-8") as f:
            json.dump(_facts, f)
'''


@dataclass
class SchemaResult:
    ok: bool
    failures: list[str]
    summary: str
    command: list[str]
    junit: Path | None = None
    har: Path | None = None
    reproduce: list[str] = field(default_factory=list)
    coverage: Counter = field(default_factory=Counter)
    spend: Spend = field(default_factory=Spend)
    verdict: str = PASSED
    reasons: list[str] = field(default_factory=list)  # why not passed, or what to know
    warnings: list[str] = field(default_factory=list)  # Schemathesis' own, one per line
    tally: dict[str, Counter] = field(default_factory=dict)  # operationId -> outcome -> n
    facts: dict = field(default_factory=dict)  # what the hooks did (keys, dates, waits)
    created: dict[str, list[str]] = field(default_factory=dict)  # ids the phase created
    limits: list[str] = field(default_factory=list)  # what the phase chose not to send

    @property
    def message(self) -> str:
        """One text for a report: the verdict's reasons, the warnings, the limits, the tally."""
        parts = [f"SCHEMA {self.verdict}: " + "; ".join(self.reasons)] if self.reasons else []
        if self.warnings:
            parts.append("Schemathesis warned: " + "; ".join(self.warnings))
        if self.limits:
            parts.append("Limited by the kit: " + "; ".join(self.limits))
        parts.append("\n".join(tally_lines(self)))
        return "\n".join(parts)


class SchemaUnjudged(Exception):
    """The phase could not judge SCHEMA (verdict inconclusive or error): raised, when asked,
    so that a caller mapping `ok` to passed/failed reports neither; `result` has it all."""

    def __init__(self, result: SchemaResult) -> None:
        super().__init__(f"SCHEMA {result.verdict}: " + "; ".join(result.reasons))
        self.result = result
        self.verdict = result.verdict


def future_date(now: dt.datetime | None = None) -> str:
    """A `scheduledFor` at least a year ahead (FUTURE_DAYS), as the contract writes times."""
    at = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(days=FUTURE_DAYS)
    return at.strftime("%Y-%m-%dT09:00:00.000Z")


def _names(contract: Contract | None) -> set[str]:
    if contract is None:
        return set()
    doc = contract.doc

    def name(param: dict) -> str | None:
        param = spec.resolve(param, doc)
        return param.get("name") if isinstance(param, dict) else None

    names = set()
    for item in (doc.get("paths") or {}).values():
        params = list(item.get("parameters") or [])
        for op in item.values():
            if isinstance(op, dict):
                params += op.get("parameters") or []
        names |= {name(p) for p in params}
    return names


def _parameters(contract: Contract | None, project_id: str | None,
                container_id: str | None) -> str:
    """Pin the path parameters the spec names for a project and a container to real ids."""
    names = _names(contract)
    pins = {}
    if project_id and "projectId" in names:
        pins["path.projectId"] = project_id
    if container_id and "containerId" in names:
        pins["path.containerId"] = container_id
    if not pins:
        return ""
    return "\n[parameters]\n" + "".join(f'"{k}" = {json.dumps(v)}\n' for k, v in pins.items())


def _operations(pins: dict[str, dict[str, str]], budget: list[str] = ()) -> str:
    """Per-operation pins (operationId -> parameter -> value), after the global ones; and the
    job-start budget of the operations `budget` names (JOB_START_EXAMPLES)."""
    out = ""
    for op, params in pins.items():
        inline = ", ".join(f'"{k}" = {json.dumps(v)}' for k, v in params.items())
        out += f'\n[[operations]]\ninclude-operation-id = "{op}"\nparameters = {{ {inline} }}\n'
    for op in budget:
        out += (f'\n[[operations]]\ninclude-operation-id = "{op}"\n'
                f"generation = {{ max-examples = {JOB_START_EXAMPLES} }}\n")
    return out


def job_start_operations(contract: Contract | None) -> list[str]:
    """The operationIds the spec puts in the rate-limit class `job_start`."""
    return [] if contract is None else [
        op.operation_id for op in contract.operations if op.rate_class == JOB_START_CLASS]


def _classes(contract: Contract | None) -> list[tuple[str, str, str]]:
    """Each operation with a rate-limit class: its method, the pattern of a URL path that ends
    in its template (contract.operations.template_regex) and the class, for the hooks."""
    return [] if contract is None else [
        (op.method, template_regex(op.path, named=False, anchored=False), op.rate_class)
        for op in contract.operations if op.rate_class]


def _labels(contract: Contract | None, operations: list[str]) -> list[str]:
    """Schemathesis' labels (`METHOD /path`) of these operationIds."""
    return [] if contract is None else [
        f"{contract.operations[o].method} {contract.operations[o].path}" for o in operations]


def budget_line(operations: list[str]) -> str:
    """What the job-start budget limited, for the report."""
    return (f"job-start budget ({', '.join(operations)}, rate-limit class {JOB_START_CLASS}): "
            f"positive cases only from the examples phase, the first {COVERAGE_POSITIVES} of "
            f"the coverage phase and at most {JOB_START_EXAMPLES} per fuzzing and stateful "
            "run; every negative case sent")


class _Patient:
    """An httpx client that waits out `429`/`503` with Retry-After (as the kit's own client
    does) until its deadline, then hands the refusal on."""

    def __init__(self, http: httpx.Client, deadline: float) -> None:
        self.http, self.deadline = http, deadline

    def request(self, method: str, url: str, **kw: object) -> httpx.Response:
        while True:
            r = self.http.request(method, url, **kw)  # type: ignore[arg-type]
            if r.status_code not in (429, 503) or "retry-after" not in r.headers:
                return r
            try:
                delay = max(0.0, float(r.headers["retry-after"]))
            except ValueError:
                delay = 1.0
            if time.monotonic() + delay > self.deadline:
                return r
            time.sleep(delay)

    def get(self, url: str, **kw: object) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: object) -> httpx.Response:
        return self.request("POST", url, **kw)

    def patch(self, url: str, **kw: object) -> httpx.Response:
        return self.request("PATCH", url, **kw)


def prepare_resources(base_url: str, api_key: str, project_id: str, *, timeout: float = 120.0,
            verify: object = True) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Resources of the phase's own, so that every operation can reach its 2xx: a container
    generated while the project's review policy is `review_all` (the policy read first is put
    back as soon as the job ended), approved (`approveContent` and `scheduleContent` work on
    it), its job (`getJob`, `cancelJob`: 200 `accepted: false`) and one post scheduled
    FUTURE_DAYS ahead (`getScheduledPost`). Returns the per-operation pins and notes on what
    could not be made."""
    pins: dict[str, dict[str, str]] = {}
    path = f"/v1/projects/{project_id}/content-review-policy"
    fresh = lambda: {"Idempotency-Key": str(uuid.uuid4())}  # noqa: E731
    with httpx.Client(base_url=base_url.rstrip("/"), headers={"X-Api-Key": api_key},
                      timeout=30, verify=verify) as http:  # type: ignore[arg-type]
        c = _Patient(http, time.monotonic() + timeout)
        try:
            r = c.get(path)
            if r.status_code != 200:
                return pins, [f"the review policy could not be read ({r.status_code})"]
            original = {k: v for k, v in r.json().items() if k in ("policy", "firstN")}
            try:
                r = c.patch(path, json={"policy": "review_all"}, headers=fresh())
                if r.status_code != 200:
                    return pins, [f"the review policy could not be set ({r.status_code})"]
                r = c.post(f"/v1/projects/{project_id}/content", headers=fresh(),
                           json={"format": "slideshow_remix", "variantCount": 1,
                                 "brief": {"topic": "Conformance kit: schema phase"}})
                if r.status_code != 202:
                    return pins, [f"generateContent answered {r.status_code}"]
                job, cid = r.json()["jobId"], r.json()["containerId"]
                deadline, delay = time.monotonic() + timeout, 0.05
                while time.monotonic() < deadline:
                    state = c.get(f"/v1/jobs/{job}")
                    if state.status_code == 200 and state.json().get("status") != "running":
                        break
                    time.sleep(delay)
                    delay = min(delay * 1.5, 5.0)
            finally:
                c.patch(path, json=original, headers=fresh())
            pins["getJob"] = pins["cancelJob"] = {"path.jobId": job}
            notes = []
            if c.post(f"/v1/content/{cid}/approve", json={}, headers=fresh()).status_code \
                    == 200:
                pins["approveContent"] = pins["scheduleContent"] = {"path.containerId": cid}
                r = c.post(f"/v1/content/{cid}/schedule", json={"scheduledFor": future_date()},
                           headers=fresh())
                if r.status_code == 201:
                    pins["getScheduledPost"] = {"path.scheduledPostId": r.json()["id"]}
                else:
                    notes.append(f"no scheduled post of its own (schedule: {r.status_code})")
            else:
                notes.append("no container to approve (the one generated under review_all "
                             "could not be approved)")
            return pins, notes
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            return pins, [f"preparing its own resources failed: {type(exc).__name__}: {exc}"]


def run_schemathesis(base_url: str, api_key: str, *, profile: str = "default",
                     max_examples: int | None = None, seed: int | None = None,
                     timeout: float = 1800, report_dir: Path | None = None,
                     project_id: str | None = None, container_id: str | None = None,
                     exclude_checks: list[str] = (),
                     contract: Contract | None = None, prepare: bool = True,
                     raise_unjudged: bool = True,
                     tls_settings: tls.TlsSettings = tls.DEFAULT,
                     job_start_budget: bool = True,
                     yield_dir: Path | None = None,
                     extra_keys: Sequence[str] = ()) -> SchemaResult:
    """Run the phase. `timeout` is its time budget. `prepare`: with a project, make the resources
    every operation needs to reach a 2xx (see `prepare_resources`). `raise_unjudged`: raise
    SchemaUnjudged when the verdict is inconclusive or error (its `result` holds everything),
    so that a caller that maps `ok` to passed or failed calls it neither.
    `job_start_budget`: send the operations of the rate-limit class job_start few positive
    cases (JOB_START_EXAMPLES; the result's `limits` says so). `yield_dir`: the run's pacer's
    signal folder (pacing.Pacer): the phase holds back a class while the checks wait on it.
    `extra_keys`: more keys of the org; the phase's job-start requests go to whichever of its
    keys has not answered 429 (HOOKS: `_pick`), instead of waiting out one key's bucket."""
    settings = PROFILES[profile]
    limited = job_start_operations(contract) if job_start_budget else []
    limits = [budget_line(limited)] if limited else []
    started = time.time()
    pins: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    if prepare and project_id and contract is not None:
        pins, notes = prepare_resources(base_url, api_key, project_id,
                                        timeout=min(300.0, timeout / 4),
                                        verify=tls.context(tls_settings))
    with tempfile.TemporaryDirectory(prefix="layers-conformance-") as tmp:
        work = Path(tmp)
        config = work / "schemathesis.toml"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_CONFIG.format(env=KEY_ENV,
                                   parameters=_parameters(contract, project_id, container_id),
                                   operations=_operations(pins, limited)))
        hooks, facts_path = work / "layers_hooks.py", work / "facts.json"
        hooks.write_text(HOOKS, encoding="utf-8")
        out_dir = Path(report_dir).resolve() if report_dir else work
        out_dir.mkdir(parents=True, exist_ok=True)
        junit, har = out_dir / "schemathesis-junit.xml", out_dir / "schemathesis.har"
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               str(spec_path()), "--url", base_url.rstrip("/"), "--checks", "all",
               "--phases", settings["phases"],
               "--max-examples", str(max_examples or settings["max_examples"]),
               "--generation-database", "none", "--no-color",
               "--report", "junit,har", "--report-junit-path", str(junit),
               "--report-har-path", str(har), *tls.schemathesis_args(tls_settings)]
        if exclude_checks:
            cmd += ["--exclude-checks", ",".join(exclude_checks)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        budget = max(1.0, timeout - (time.time() - started))
        keys = [api_key, *extra_keys]  # distinct already (Target.keys)
        env = {**os.environ, KEY_ENV: api_key, "SCHEMATHESIS_HOOKS": str(hooks),
               KEYS_ENV: json.dumps(keys), "LAYERS_SCHEMA_CLASSES": json.dumps(_classes(contract)),
               "LAYERS_SCHEMA_DEADLINE": str(time.time() + budget * PACING_SHARE),
               "LAYERS_SCHEMA_FUTURE": future_date(), "LAYERS_SCHEMA_FACTS": str(facts_path),
               "LAYERS_SCHEMA_JOB_STARTS": json.dumps(_labels(contract, limited)),
               "LAYERS_SCHEMA_COVERAGE_POSITIVES": str(COVERAGE_POSITIVES),
               "LAYERS_SCHEMA_YIELD": str(yield_dir) if yield_dir else ""}
        for stale in (junit, har):
            stale.unlink(missing_ok=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget,
                                  cwd=work, env=env)
        except subprocess.TimeoutExpired:
            res = SchemaResult(False, [], "", cmd, verdict=INCONCLUSIVE,
                               reasons=[f"Schemathesis did not finish within its time budget "
                                        f"({timeout:g} s)", *notes],
                               limits=limits)
            return _settle(res, raise_unjudged)
        for path in (junit, har):
            _mask_file(path, keys)
        failures = _junit_failures(junit) if junit.exists() else []
        out = _mask(proc.stdout, keys)
        err = _mask(proc.stderr, keys)
        summary = out[out.rfind("SUMMARY"):][:2000] if "SUMMARY" in out else out[-2000:]
        coverage, spend, created = _har_facts(har, contract)
        for kind, made in _pinned_ids(pins).items():
            created[kind] = made + [i for i in created[kind] if i not in made]
        facts = _read_json(facts_path)
        kept = report_dir is not None
        res = SchemaResult(False, failures, summary, cmd,
                           junit if kept and junit.exists() else None,
                           har if kept and har.exists() else None,
                           _reproductions(out), coverage, spend,
                           warnings=_warnings(out), tally=_tally(har, contract, facts),
                           facts=facts, created=created,
                           limits=limits)
        _judge(res, proc.returncode, out, err, contract, notes)
        return _settle(res, raise_unjudged)


def _settle(res: SchemaResult, raise_unjudged: bool) -> SchemaResult:
    res.ok = res.verdict == PASSED
    if raise_unjudged and res.verdict in (INCONCLUSIVE, ERROR):
        raise SchemaUnjudged(res)
    return res


def _judge(res: SchemaResult, returncode: int, out: str, err: str,
           contract: Contract | None, notes: list[str]) -> None:
    """The verdict from what Schemathesis said and what the phase reached."""
    transport = [f for f in res.failures if _TRANSPORT.search(f)]
    # Schemathesis' own errors ("Runtime Error": e.g. Hypothesis finding a case flaky when the
    # network dropped one of its replays) say nothing about the target: never `failed`.
    runtime = [f for f in res.failures if f not in transport and
               "Runtime Error" in f.split("\n", 1)[0]]
    real = [f for f in res.failures if f not in transport and f not in runtime]
    network = sum((res.facts.get("network") or {}).values())
    if runtime and not real:
        res.failures = []
        if transport or network:
            res.verdict = INCONCLUSIVE
            res.reasons.append(f"the target stopped answering ({len(transport) or network} "
                               "request(s) without an answer), and Schemathesis could not "
                               f"finish {len(runtime)} case(s): {runtime[0].splitlines()[0]}")
        else:
            res.verdict = ERROR
            res.reasons.append(f"Schemathesis failed on {len(runtime)} case(s) itself (not a "
                               f"finding about the target): {runtime[0][:500]}")
        return
    if real:
        res.verdict, res.failures = FAILED, real
        if transport:
            res.reasons.append(f"{len(transport)} request(s) got no answer (not counted as "
                               "failures)")
        return
    if returncode != 0 and not transport:
        if "missing_auth" in out.lower() or "missing authentication" in out.lower():
            res.verdict, res.failures = FAILED, [out[-3000:]]
            return
        if not _TRANSPORT.search(out + err):
            res.verdict = ERROR
            res.reasons.append("Schemathesis could not run: " +
                               ((err or out).strip()[-1500:] or f"exit status {returncode}"))
            return
    if transport or network or (returncode != 0 and _TRANSPORT.search(out + err)):
        res.verdict = INCONCLUSIVE
        res.reasons.append(f"the target stopped answering ({len(transport) or network} "
                           "request(s) without an answer: cannot connect, reset or timed out)")
        res.failures = transport
        return
    res.failures = []
    res.reasons += notes
    for op in write_operations(contract):
        reached = res.tally.get(op, Counter())
        if not sum(n for k, n in reached.items() if k == "2xx"):
            got = ", ".join(f"{k} x{n}" for k, n in reached.most_common(4)) or "no answer"
            res.reasons.append(f"{op} was never accepted (no 2xx; it got {got})")
    conflicts = sum(t.get("409 IDEMPOTENCY_CONFLICT", 0) for t in res.tally.values())
    if conflicts:
        res.reasons.append(f"{conflicts} answer(s) were 409 IDEMPOTENCY_CONFLICT, which the "
                           "phase never intends (every request has a fresh key)")
    untested = [w for w in res.warnings if any(k in w.lower() for k in UNTESTED_WARNINGS)]
    if untested:
        res.reasons.append("Schemathesis warned that logic went untested: " +
                           "; ".join(untested))
    unwaited = sum((res.facts.get("unwaited") or {}).values())
    if unwaited:
        res.reasons.append(f"{unwaited} 429(s) were left unwaited: the time budget ran out")
    judged = [r for r in res.reasons if r not in notes]
    res.verdict = INCONCLUSIVE if judged else PASSED


def write_operations(contract: Contract | None) -> list[str]:
    """The operationIds of the contract's write operations (POST, PUT, PATCH, DELETE)."""
    if contract is None:
        return []
    out = []
    for item in (contract.doc.get("paths") or {}).values():
        for method, op in item.items():
            if method.upper() in WRITE_METHODS and isinstance(op, dict) and \
                    op.get("operationId"):
                out.append(op["operationId"])
    return out


def tally_lines(res: SchemaResult) -> list[str]:
    """The per-operation tally, one line each: what the phase reached."""
    lines = ["Schemathesis reached, per operation (2xx, 4xx by code, 429 left / waited out):"]
    for op in sorted(res.tally):
        t = res.tally[op]
        parts = [f"{k} x{n}" for k, n in sorted(t.items(), key=lambda kv: (kv[0] != "2xx",
                                                                          kv[0]))]
        lines.append(f"  {op}: " + ", ".join(parts))
    f = res.facts or {}
    if f:
        lines.append(f"  fresh Idempotency-Keys {f.get('keys', 0)}, scheduleContent bodies "
                     f"dated {FUTURE_DAYS} days ahead {f.get('dated', 0)}, "
                     f"{f.get('waitedSeconds', 0):.0f} s waited on Retry-After, "
                     f"{f.get('yieldedSeconds', 0):.0f} s held back for the checks' turn")
    spread = f.get("perKey") or {}
    if len(spread) > 1:
        lines.append("  job-start requests per key of the phase (its first key first): "
                     + " / ".join(str(spread[k]) for k in sorted(spread, key=int)))
    return lines


def command_line(result: SchemaResult) -> str:
    """The command as run (no key in it: the key travels in the environment)."""
    return " ".join(shlex.quote(c) for c in result.command)


def _mask(text: str, keys: Sequence[str]) -> str:
    for key in sorted(keys, key=len, reverse=True):  # a key inside another: the longer first
        if key:
            text = text.replace(key, mask(key))
    return text


def _mask_file(path: Path, keys: Sequence[str]) -> None:
    if path.exists():
        text = path.read_text(encoding="utf-8", errors="replace")
        masked = _mask(text, keys)
        if masked != text:
            path.write_text(masked, encoding="utf-8")


def _reproductions(out: str) -> list[str]:
    """The `curl` reproduction commands Schemathesis prints for each failure."""
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines):
        if "Reproduce with" in line:
            cmd = []
            for nxt in lines[i + 1:]:
                if not nxt.strip():
                    if cmd:
                        break
                    continue
                cmd.append(nxt.strip())
                if not nxt.rstrip().endswith("\\"):
                    break
            if cmd:
                found.append("\n".join(cmd))
    return found[:20]


def _har_facts(har: Path, contract: Contract | None) -> tuple[Counter, Spend,
                                                              dict[str, list[str]]]:
    """Coverage (operation x status), spend, and the ids the phase created, from its HAR."""
    coverage: Counter = Counter()
    spend = Spend()
    created: dict[str, list[str]] = {"containers": [], "jobs": [], "scheduledPosts": []}
    if contract is None or not har.exists():
        return coverage, spend, created
    try:
        entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    except (ValueError, KeyError, TypeError):
        return coverage, spend, created
    for e in entries:
        req, res = e.get("request") or {}, e.get("response") or {}
        method, url, status = req.get("method", ""), req.get("url", ""), res.get("status")
        op = contract.operation_for(method, url)
        if op is None or not isinstance(status, int) or status == 0:
            continue
        coverage[(op, status)] += 1
        headers = {h.get("name", "").lower(): h.get("value") for h in res.get("headers") or []}
        replayed = headers.get("idempotent-replayed") == "true"
        answer = (res.get("content") or {}).get("text")
        spend.add(spend_of(op, method, status, (req.get("postData") or {}).get("text"),
                           answer, replayed, "schemathesis"))
        for kind, ids in created_by(op, status, answer, replayed).items():
            created[kind] += [i for i in ids if i not in created[kind]]
    return coverage, spend, created


def _pinned_ids(pins: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """The resources `prepare_resources` made (pinned for the phase's operations)."""
    kinds = {"containerId": "containers", "jobId": "jobs", "scheduledPostId": "scheduledPosts"}
    out: dict[str, list[str]] = {kind: [] for kind in kinds.values()}
    for params in pins.values():
        for name, value in params.items():
            name = name.removeprefix("path.")
            if name in kinds and value not in out[kinds[name]]:
                out[kinds[name]].append(value)
    return out


def _junit_failures(path: Path) -> list[str]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                text = (node.get("message") or "") + "\n" + (node.text or "")
                out.append(f"{case.get('name')}: {text.strip()[:1500]}")
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _warnings(out: str) -> list[str]:
    """Schemathesis' own warnings, one line each: the title and the operations it names."""
    m = re.search(r"=+ WARNINGS =+\n(.*?)\n=+ ", out, re.S)
    if not m:
        return []
    found: list[str] = []
    for para in re.split(r"\n\s*\n", m.group(1)):
        lines = [ln.strip() for ln in para.strip().splitlines() if ln.strip()]
        if not lines or lines[0].startswith("💡"):
            continue
        if lines[0].startswith("- ") or not re.match(r"^[A-Z][^:]{2,60}: \S", lines[0]):
            if not found:
                continue
            found[-1] += " (" + ", ".join(ln[2:] for ln in lines if ln.startswith("- ")) + ")"
            continue
        found.append(lines[0])
    return found


def _error_code(text: str | None) -> str | None:
    try:
        err = json.loads(text or "")["error"]
        return err.get("code") if isinstance(err, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def _tally(har: Path, contract: Contract | None, facts: dict) -> dict[str, Counter]:
    """operationId -> what it reached: `2xx`, `304`, `<status> <code>` for errors, `429`
    (left) and `429 waited out` (from the hooks' facts)."""
    tally: dict[str, Counter] = {}
    if contract is None:
        return tally
    entries = []
    if har.exists():
        try:
            entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
        except (ValueError, KeyError, TypeError):
            entries = []
    for e in entries:
        req, res = e.get("request") or {}, e.get("response") or {}
        op = contract.operation_for(req.get("method", ""), req.get("url", ""))
        status = res.get("status")
        if op is None or not isinstance(status, int) or status == 0:
            continue
        if 200 <= status < 300:
            key = "2xx"
        elif status == 429:
            key = "429"
        else:
            code = _error_code((res.get("content") or {}).get("text")) if status >= 400 else None
            key = f"{status} {code}" if code else str(status)
        tally.setdefault(op, Counter())[key] += 1
    by_label = {}
    for path, item in (contract.doc.get("paths") or {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId"):
                by_label[f"{method.upper()} {path}"] = op["operationId"]
    for label, n in (facts.get("waited") or {}).items():
        op = by_label.get(label, label)
        tally.setdefault(op, Counter())["429 waited out"] += n
    return tally
