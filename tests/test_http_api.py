"""The mock over HTTP, each test run twice: in process, and against the real layers-mock process.

Covers every rule of D4 (R1-R12), every D5 code, D6, D7, D8 and the D9 controls as a client
meets them.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support import ids

REGEN = "/v1/content/{}/regenerate"


E2E = pytest.mark.e2e
IN_PROCESS_AND_LIVE = ["in-process", pytest.param("process-memory", marks=E2E)]
EVERY_STORE = [*IN_PROCESS_AND_LIVE, pytest.param("process-sqlite", marks=E2E),
               pytest.param("process-redis", marks=E2E)]


@pytest.fixture(params=IN_PROCESS_AND_LIVE)
def http(request, live_mocks) -> httpx.Client:
    """A client with no key; tests pass keys explicitly. The mock is fresh and its clock manual.

    In process, then the real layers-mock process (memory store). The store contract itself is
    tested once per store in test_stores.py; the smoke subset below (`http_any`) runs over the
    real process on every durable store too (D9: the same behaviour on every store).
    """
    yield from _client(request, live_mocks)


@pytest.fixture(params=EVERY_STORE)
def http_any(request, live_mocks) -> httpx.Client:
    """`http`, and also the real process over SQLite and over Redis (the smoke subset)."""
    yield from _client(request, live_mocks)


def _client(request, live_mocks):
    if request.param == "in-process":
        with TestClient(request.getfixturevalue("app"), base_url="http://127.0.0.1") as c:
            yield c
    else:
        mp = live_mocks(request.param.removeprefix("process-"))
        with mp.client(None) as c:
            assert c.post("/__mock/reset", json={}).status_code == 200
            yield c


FULL = {"X-Api-Key": ids.FULL}


def advance(http, seconds: float) -> None:
    assert http.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def regenerate(http, cid=ids.CNT_NOT_REQUIRED, body=None, headers=None):
    kw = {"json": body} if body is not None else {}
    return http.post(REGEN.format(cid), headers={**FULL, **(headers or {})}, **kw)


def finish(http, job_id: str) -> dict:
    advance(http, 5.1)
    r = http.get(f"/v1/jobs/{job_id}", headers=FULL)
    assert r.status_code == 200
    return r.json()


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code
    assert err["requestId"] == r.headers["x-request-id"]
    assert err["message"] and "\n" not in err["message"] and len(err["message"]) < 200
    assert "Traceback" not in r.text
    return err


# ---- D4 -------------------------------------------------------------------------------------

def test_r1_accepted(http_any):
    http = http_any
    r = regenerate(http, body={"brief": {"topic": "Thirty days, one run at a time."}})
    assert r.status_code == 202
    body = r.json()
    assert r.headers["location"] == body["locationUrl"] == f"/v1/jobs/{body['jobId']}"
    assert (body["kind"], body["status"], body["stage"], body["progress"]) == (
        "content_regenerate", "running", "queued", 0)
    assert body["containerId"] == ids.CNT_NOT_REQUIRED and body["projectId"] == ids.PRJ_AUTO
    assert r.headers["x-ratelimit-endpoint-class"] == "job_start"


def test_r1_no_body_and_empty_body_are_accepted(http):
    assert regenerate(http).status_code == 202
    advance(http, 6)
    r = http.post(REGEN.format(ids.CNT_NOT_REQUIRED),
                  headers={**FULL, "Content-Type": "application/json"}, content=b"")
    assert r.status_code == 202


def test_r2_r3_r4_r7_completion(http_any):
    http = http_any
    before = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    job = finish(http, regenerate(http).json()["jobId"])
    assert job["status"] == "completed" and job["result"]["containerId"] == ids.CNT_NOT_REQUIRED
    after = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    assert after["id"] == before["id"]  # R2
    old = {a["assetId"] for a in before["assets"]}
    assert not old & {a["assetId"] for a in after["assets"]}  # R3
    assert after["caption"] != before["caption"]  # R4
    for aid in old:  # R7
        r = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}/assets/{aid}", headers=FULL)
        assert r.status_code == 200 and r.json()["supersededAt"] is not None


def test_r5_brief_merge(http):
    before = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    r = regenerate(http, body={"brief": {"cta": "Start today — link in bio.",
                                         "valuePropositions": ["One"]}})
    finish(http, r.json()["jobId"])
    brief = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()["brief"]
    assert brief == {**before["brief"], "cta": "Start today — link in bio.",
                     "valuePropositions": ["One"]}


def test_r6_preserve_assets(http):
    before = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    finish(http, regenerate(http, body={"preserveAssets": True}).json()["jobId"])
    after = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    assert after["assets"] == before["assets"] and after["caption"] != before["caption"]


def test_r8_r9_review_and_scheduled_posts(http):
    c = ids.CNT_APPROVED_SCHEDULED
    before = http.get(f"/v1/content/{c}", headers=FULL).json()
    post = http.get(f"/v1/scheduled-posts/{before['scheduledPostIds'][0]}", headers=FULL).json()
    finish(http, regenerate(http, c).json()["jobId"])
    after = http.get(f"/v1/content/{c}", headers=FULL).json()
    assert after["approvalStatus"] == "pending"  # R8
    assert after["scheduledPostIds"] == before["scheduledPostIds"]  # R9
    assert http.get(f"/v1/scheduled-posts/{post['id']}", headers=FULL).json() == post


def test_r10_busy_container(http_any):
    http = http_any
    first = regenerate(http).json()
    err = assert_error(regenerate(http), 409, "CONFLICT")
    assert err["details"]["jobId"] == first["jobId"]


def test_r11_failed_job_keeps_content(http_any):
    http = http_any
    before = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    r = regenerate(http, body={"brief": {"topic": "x"}}, headers={"Prefer": "job=fail"})
    job = finish(http, r.json()["jobId"])
    assert job["status"] == "failed" and job["error"]["code"] == "GENERATION_FAILED"
    after = http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=FULL).json()
    for field in ("assets", "caption", "brief", "approvalStatus"):
        assert after[field] == before[field]
    assert after["lastError"]["jobId"] == job["jobId"]


def test_r12_errors(http):
    missing = assert_error(regenerate(http, ids.MISSING), 404, "NOT_FOUND")
    other = assert_error(regenerate(http, ids.CNT_OTHER), 404, "NOT_FOUND")
    assert missing["message"] == other["message"] and "details" not in other
    r = http.post(REGEN.format(ids.CNT_BROKE), headers={"X-Api-Key": ids.BROKE})
    assert_error(r, 402, "BILLING_EXHAUSTED")
    r = regenerate(http, body={"brief": {"topic": "moderation-test-block"}})
    assert_error(r, 422, "MODERATION_BLOCKED")
    r = regenerate(http, body={"brief": {"topic": 5, "mood": "x"}, "preserveAssets": "yes"})
    err = assert_error(r, 422, "VALIDATION_FAILED")
    paths = {i["path"] for i in err["details"]["issues"]}
    assert paths == {"body.brief.topic", "body.brief.mood", "body.preserveAssets"}


# ---- D5: every code from a real condition ---------------------------------------------------

@pytest.mark.parametrize("case", [
    ("bad path id", lambda h: h.post(REGEN.format("not-an-id"), headers=FULL), 422,
     "VALIDATION_FAILED"),
    ("unknown query", lambda h: h.get(f"/v1/content/{ids.CNT_PENDING}?x=1", headers=FULL), 422,
     "VALIDATION_FAILED"),
    ("bad idempotency key", lambda h: h.post(REGEN.format(ids.CNT_PENDING),
                                             headers={**FULL, "Idempotency-Key": "x" * 256}),
     422, "VALIDATION_FAILED"),
    ("malformed json", lambda h: h.post(REGEN.format(ids.CNT_PENDING), content=b'{"brief":',
                                        headers={**FULL, "Content-Type": "application/json"}),
     422, "VALIDATION_FAILED"),
    ("not utf-8", lambda h: h.post(REGEN.format(ids.CNT_PENDING), content=b'{"a":"\xff"}',
                                   headers={**FULL, "Content-Type": "application/json"}),
     422, "VALIDATION_FAILED"),
    ("lone surrogate", lambda h: h.post(REGEN.format(ids.CNT_PENDING),
                                        content=b'{"brief":{"topic":"\\ud800"}}',
                                        headers={**FULL, "Content-Type": "application/json"}),
     422, "VALIDATION_FAILED"),
    ("json array", lambda h: h.post(REGEN.format(ids.CNT_PENDING), json=[1], headers=FULL),
     422, "VALIDATION_FAILED"),
    ("text body", lambda h: h.post(REGEN.format(ids.CNT_PENDING), content=b"hi",
                                   headers={**FULL, "Content-Type": "text/plain"}),
     415, "UNSUPPORTED_MEDIA_TYPE"),
    ("no content type", lambda h: h.post(REGEN.format(ids.CNT_PENDING), content=b"{}",
                                         headers=FULL), 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("no key", lambda h: h.get(f"/v1/content/{ids.CNT_PENDING}"), 401, "UNAUTHENTICATED"),
    ("unknown key", lambda h: h.get(f"/v1/content/{ids.CNT_PENDING}",
                                    headers={"X-Api-Key": "lp_test_nope"}), 401,
     "UNAUTHENTICATED"),
    ("malformed bearer", lambda h: h.get(f"/v1/content/{ids.CNT_PENDING}",
                                         headers={"Authorization": "Basic abc"}), 401,
     "UNAUTHENTICATED"),
    ("unknown route", lambda h: h.get("/v1/nothing-here", headers=FULL), 404, "NOT_FOUND"),
    ("wrong method", lambda h: h.delete(f"/v1/content/{ids.CNT_PENDING}", headers=FULL), 405,
     "METHOD_NOT_ALLOWED"),
    ("approve not required", lambda h: h.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/approve",
                                              headers=FULL), 409, "CONFLICT"),
    ("schedule pending", lambda h: h.post(f"/v1/content/{ids.CNT_PENDING}/schedule",
                                          headers=FULL, json={"scheduledFor":
                                                              "2030-01-01T00:00:00Z"}),
     409, "APPROVAL_REQUIRED"),
    ("too large", lambda h: h.post(REGEN.format(ids.CNT_PENDING), headers=FULL,
                                   content=b'{"x":"' + b"a" * (1024 * 1024) + b'"}'),
     413, "PAYLOAD_TOO_LARGE"),
], ids=lambda c: c[0] if isinstance(c, tuple) else None)
def test_d5_error_envelopes(http, case):
    _, call, status, code = case
    assert_error(call(http), status, code)


def test_d5_forbidden_scope_names_the_scope(http):
    r = regenerate(http, headers={"X-Api-Key": ids.READONLY})
    err = assert_error(r, 403, "FORBIDDEN_SCOPE")
    assert err["details"]["requiredScope"] == "content:write"


def test_d5_every_response_has_a_request_id(http):
    for r in (http.get("/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T", headers=FULL),
              http.get(f"/v1/content/{ids.CNT_PENDING}", headers=FULL), http.get("/nope")):
        assert r.headers["x-request-id"].startswith("req_") and len(r.headers["x-request-id"]) == 30


def test_d5_validation_lists_issues_without_schema_dumps(http):
    r = http.post(f"/v1/projects/{ids.PRJ_AUTO}/content", headers=FULL,
                  json={"variantCount": 9, "format": "gif", "brief": {"topic": ""}})
    err = assert_error(r, 422, "VALIDATION_FAILED")
    issues = {i["path"]: i["message"] for i in err["details"]["issues"]}
    assert set(issues) == {"body.variantCount", "body.format", "body.brief.topic"}
    assert all(len(m) < 120 and "{" not in m for m in issues.values())


# ---- D6 -------------------------------------------------------------------------------------

def test_d6_replay_is_byte_identical_and_marked(http_any):
    http = http_any
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = regenerate(http, body={"brief": {"cta": "Go"}}, headers=key)
    again = regenerate(http, body={"brief": {"cta": "Go"}}, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["location"] == first.headers["location"]
    # The replay is the first response, request id included, and the journal says so.
    assert again.headers["x-request-id"] == first.headers["x-request-id"]
    entry = http.get("/__mock/requests?limit=1").json()["requests"][0]
    assert entry["replayed"] is True
    assert entry["requestId"] == first.headers["x-request-id"]


def test_d6_same_key_other_body_is_conflict(http):
    key = {"Idempotency-Key": "reuse-me"}
    assert regenerate(http, body={"brief": {"cta": "A"}}, headers=key).status_code == 202
    assert_error(regenerate(http, body={"brief": {"cta": "B"}}, headers=key), 409,
                 "IDEMPOTENCY_CONFLICT")


def test_d6_stored_errors_replay_and_unstored_do_not(http_any):
    http = http_any
    key = {"Idempotency-Key": "k-404"}
    first = regenerate(http, ids.MISSING, headers=key)
    again = regenerate(http, ids.MISSING, headers=key)
    assert (first.status_code, again.status_code) == (404, 404)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    # VALIDATION_FAILED is not kept: the corrected retry with the same key runs.
    key = {"Idempotency-Key": "k-422"}
    assert regenerate(http, body={"brief": {"topic": 1}}, headers=key).status_code == 422
    assert regenerate(http, body={"brief": {"topic": "ok"}}, headers=key).status_code == 202
    # 403 is not kept either.
    key = {"Idempotency-Key": "k-403"}
    r = regenerate(http, ids.CNT_PENDING, headers={**key, "X-Api-Key": ids.READONLY})
    assert r.status_code == 403
    assert regenerate(http, ids.CNT_PENDING, headers=key).status_code == 202


def test_d6_keys_are_scoped_to_the_api_key(http):
    key = {"Idempotency-Key": "shared-key"}
    a = regenerate(http, ids.CNT_NOT_REQUIRED, headers=key)
    b = http.post(REGEN.format(ids.CNT_OTHER), headers={"X-Api-Key": ids.OTHER, **key})
    assert a.status_code == b.status_code == 202 and a.json()["jobId"] != b.json()["jobId"]


# ---- D7 -------------------------------------------------------------------------------------

def test_d7_etag_and_304(http_any):
    http = http_any
    job_id = regenerate(http).json()["jobId"]
    r = http.get(f"/v1/jobs/{job_id}", headers=FULL)
    tag = r.headers["etag"]
    r304 = http.get(f"/v1/jobs/{job_id}", headers={**FULL, "If-None-Match": tag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == tag
    advance(http, 1.2)
    moved = http.get(f"/v1/jobs/{job_id}", headers={**FULL, "If-None-Match": tag})
    assert moved.status_code == 200 and moved.headers["etag"] != tag
    assert moved.json()["stage"] == "planning"


def test_d7_cancel(http_any):
    http = http_any
    job_id = regenerate(http).json()["jobId"]
    r = http.post(f"/v1/jobs/{job_id}/cancel", headers=FULL)
    assert r.status_code == 202 and r.json() == {"jobId": job_id, "accepted": True}
    again = http.post(f"/v1/jobs/{job_id}/cancel", headers=FULL)
    assert again.status_code == 200 and again.json()["reason"] == "ALREADY_CANCELED"


# ---- D8 -------------------------------------------------------------------------------------

def test_d8_bearer_works_and_x_api_key_wins(http):
    r = http.get(f"/v1/content/{ids.CNT_PENDING}", headers={"Authorization": f"Bearer {ids.FULL}"})
    assert r.status_code == 200
    r = http.get(f"/v1/content/{ids.CNT_PENDING}",
                 headers={"X-Api-Key": "lp_test_wrong", "Authorization": f"Bearer {ids.FULL}"})
    assert_error(r, 401, "UNAUTHENTICATED")
    r = http.get(f"/v1/content/{ids.CNT_PENDING}",
                 headers={"X-Api-Key": ids.OTHER, "Authorization": f"Bearer {ids.FULL}"})
    assert_error(r, 404, "NOT_FOUND")  # the Other org's key was used


def test_d8_other_org_resources_are_not_found(http):
    job_id = regenerate(http).json()["jobId"]
    other = {"X-Api-Key": ids.OTHER}
    assert_error(http.get(f"/v1/jobs/{job_id}", headers=other), 404, "NOT_FOUND")
    assert_error(http.post(f"/v1/jobs/{job_id}/cancel", headers=other), 404, "NOT_FOUND")
    assert_error(http.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers=other), 404,
                 "NOT_FOUND")
    assert_error(http.get(f"/v1/projects/{ids.PRJ_AUTO}/content-review-policy", headers=other),
                 404, "NOT_FOUND")


# ---- D9 controls ----------------------------------------------------------------------------

def test_prefer_code_error_and_latency(http):
    r = regenerate(http, headers={"Prefer": "code=402"})
    assert_error(r, 402, "BILLING_EXHAUSTED")
    r = regenerate(http, headers={"Prefer": "error=MODERATION_BLOCKED"})
    assert_error(r, 422, "MODERATION_BLOCKED")
    r = regenerate(http, headers={"Prefer": "code=418"})
    assert_error(r, 422, "VALIDATION_FAILED")
    r = http.get(f"/v1/content/{ids.CNT_PENDING}", headers={**FULL, "Prefer": "latency=50"})
    assert r.status_code == 200
    r = regenerate(http, headers={"Prefer": "code=202"})  # the natural status: runs for real
    assert r.status_code == 202
    assert http.get(r.headers["location"], headers=FULL).status_code == 200


def test_prefer_is_checked_after_auth(http):
    r = http.post(REGEN.format(ids.CNT_PENDING), headers={"Prefer": "code=402"})
    assert_error(r, 401, "UNAUTHENTICATED")


def test_faults_fire_n_times_then_stop(http_any):
    http = http_any
    r = http.post("/__mock/faults", json={"match": {"operationId": "getContent"}, "count": 2,
                                          "status": 503})
    assert r.status_code == 201
    url = f"/v1/content/{ids.CNT_PENDING}"
    assert [http.get(url, headers=FULL).status_code for _ in range(3)] == [503, 503, 200]
    http.post("/__mock/faults", json={"match": {"path": "^/v1/jobs/"}, "code": "RATE_LIMITED"})
    assert http.get("/__mock/faults").json()["faults"][0]["remaining"] == 1
    assert http.delete("/__mock/faults").status_code == 200
    assert http.get("/__mock/faults").json() == {"faults": []}


def test_fault_definitions_are_validated(http):
    err = assert_error(http.post("/__mock/faults", json={"status": 200}), 422,
                       "VALIDATION_FAILED")
    assert "status" in err["details"]["issues"][0]["message"]
    err = assert_error(http.post("/__mock/faults", json={"match": {"operationId": "getJbo"},
                                                         "status": 503}), 422,
                       "VALIDATION_FAILED")
    assert err["details"]["issues"][0]["path"] == "body.match.operationId"
    assert_error(http.post("/__mock/faults", content=b"{", headers={"Content-Type":
                                                                    "application/json"}),
                 422, "VALIDATION_FAILED")


def test_journal_records_requests_with_masked_keys(http_any):
    http = http_any
    regenerate(http)
    entries = http.get("/__mock/requests?limit=5").json()["requests"]
    entry = entries[0]
    assert entry["operationId"] == "regenerateContent" and entry["status"] == 202
    assert ids.FULL not in json.dumps(entries)
    assert entry["key"].endswith("…")


def test_clock_advance_needs_a_number(http):
    assert_error(http.post("/__mock/clock/advance", json={"seconds": "x"}), 422,
                 "VALIDATION_FAILED")
    assert_error(http.post("/__mock/nope"), 404, "NOT_FOUND")


def test_spec_and_docs_are_served(http):
    assert http.get("/openapi.yaml").text.startswith("openapi: 3.0.3")
    assert http.get("/openapi.json").json()["openapi"] == "3.0.3"
    assert http.get("/docs/").status_code == 200
