"""One judge per rule: the active kit and the validating proxy, fed the same breach, report the
same rule and the same message (D5, D6, D7), because both hand what they saw to
conformance/judges.py.

The kit is driven through its real HTTP client (an in-process transport answers with the
canned responses) and its real check helpers; the proxy through its real judging pipeline
(`Judging`: view, checks, memory), fed the same bytes as proxy exchanges.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from layers_kit.conformance import judges
from layers_kit.conformance.checks.idempotency import _same_response
from layers_kit.conformance.checks.jobs import _judge_pairs
from layers_kit.conformance.client import Client
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.failures import Violation
from layers_kit.conformance.observations import Observations
from layers_kit.conformance.proxy.exchange import Exchange
from layers_kit.conformance.proxy.judge import Judging

BASE = "http://target.test"
CID = "cnt_00000000-0000-4000-8000-000000000103"
JOB = "job_01HXZB0C1D2E3F4G5H6J7K8M9N"
KEY = "8d2f1a3e-0000-4000-8000-00000000abcd"


def _job(stage: str, progress: float, status: str = "running") -> bytes:
    return json.dumps({
        "jobId": JOB, "kind": "content_regenerate", "status": status, "stage": stage,
        "progress": progress, "containerId": CID, "projectId":
        "prj_00000000-0000-4000-8000-000000000002", "locationUrl": f"/v1/jobs/{JOB}",
        "startedAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:01Z",
    }).encode()


def _envelope(status: int, etag: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json",
               "x-request-id": "req_01HXZB0C1D2E3F4G5H6J7K8M9N"}
    if etag:
        headers["etag"] = etag
    return headers


# Each breach: the requests a client sends and the answers a broken server gives, in order.
# (method, path, request headers, request body, status, response headers, response body)
Step = tuple[str, str, dict[str, str], bytes | None, int, dict[str, str], bytes]

D5_BREACH: list[Step] = [  # a 404 whose requestId is not its X-Request-Id
    ("GET", f"/v1/content/{CID}", {}, None, 404, _envelope(404),
     json.dumps({"error": {"code": "NOT_FOUND", "message": "No such container.",
                           "requestId": "req_01HXZB0C1D2E3F4G5H6J7K8M9P"}}).encode()),
]
_ACCEPTED = _job("queued", 0)
D6_BREACH: list[Step] = [  # the replay of a 202 is marked, but its body is another job's
    ("POST", f"/v1/content/{CID}/regenerate", {"idempotency-key": KEY}, b"{}", 202,
     {**_envelope(202), "location": f"/v1/jobs/{JOB}"}, _ACCEPTED),
    ("POST", f"/v1/content/{CID}/regenerate", {"idempotency-key": KEY}, b"{}", 202,
     {**_envelope(202), "location": f"/v1/jobs/{JOB}", "idempotent-replayed": "true"},
     _ACCEPTED.replace(b"00:00:00Z", b"00:00:09Z")),
]
D7_BREACH: list[Step] = [  # progress goes back between two reads of one job
    ("GET", f"/v1/jobs/{JOB}", {}, None, 200, _envelope(200, '"v1"'), _job("planning", 0.4)),
    ("GET", f"/v1/jobs/{JOB}", {}, None, 200, _envelope(200, '"v2"'), _job("planning", 0.2)),
]


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(BASE)


def _kit_responses(steps: list[Step], contract: Contract,
                   observations: Observations) -> list[httpx.Response]:
    """The kit's real client, its target answering the steps in order."""
    answers = iter(steps)

    def serve(request: httpx.Request) -> httpx.Response:
        _, _, _, _, status, headers, body = next(answers)
        return httpx.Response(status, headers=headers, content=body)

    client = Client(BASE, "lp_test_full", contract, [], observations=observations,
                    check="test", transport=httpx.MockTransport(serve))
    try:
        return [client.request(m, p, headers=h, content=b)
                for m, p, h, b, *_ in steps]
    finally:
        client.close()


def _proxy_findings(steps: list[Step]) -> list[tuple[str, str]]:
    """The proxy's judging pipeline on the same exchanges: (rule, message) of its server
    findings, in order."""
    judging = Judging(BASE)
    found = []
    for method, path, req_headers, req_body, status, headers, body in steps:
        started = time.monotonic()
        ex = Exchange(method, BASE + path, path,
                      [("x-api-key", "lp_test_full"), ("content-type", "application/json"),
                       *req_headers.items()], req_body, started)
        judging.arrived(ex)
        ex.status, ex.response_headers, ex.response_body = status, list(headers.items()), body
        ex.ended = time.monotonic()
        verdict = judging.judge(ex)
        found += [(rule, finding.message) for side, rule, _, _, finding, _ in verdict.findings
                  if side == "server"]
    return found


def test_the_same_d5_breach_gets_the_same_rule_and_message(contract):
    obs = Observations()
    _kit_responses(D5_BREACH, contract, obs)
    kit = [("D5", b.message) for b in obs.d5_breaches]
    assert kit == [("D5", "error.requestId differs from the X-Request-Id header")]
    assert obs.schema_breaches == []  # the breach is D5's alone
    assert _proxy_findings(D5_BREACH) == kit


def test_the_same_d6_breach_gets_the_same_rule_and_message(contract):
    first, again = _kit_responses(D6_BREACH, contract, Observations())
    with pytest.raises(Violation) as kit:
        _same_response(first, again)  # the kit's D6 replay checks end in this judgement
    assert kit.value.message == "the replay differs from the first answer to the key"
    assert _proxy_findings(D6_BREACH) == [("D6", kit.value.message)]


def test_the_same_d7_breach_gets_the_same_rule_and_message(contract):
    responses = _kit_responses(D7_BREACH, contract, Observations())
    reads = [(judges.JobRead.of(r.content, r.headers.get("etag")), r) for r in responses]
    with pytest.raises(Violation) as kit:
        _judge_pairs(reads, judges.job_progress)  # d7_progress_monotonic's judgement
    assert kit.value.message == "progress went back between two reads of the job"
    assert _proxy_findings(D7_BREACH) == [("D7", kit.value.message)]


def test_a_correct_exchange_is_clean_for_both(contract):
    """The canned answers without their breach pass both: the breach alone is reported."""
    fixed_d7 = [D7_BREACH[0], (*D7_BREACH[1][:6], _job("assembling", 0.6))]
    obs = Observations()
    responses = _kit_responses(fixed_d7, contract, obs)
    reads = [(judges.JobRead.of(r.content, r.headers.get("etag")), r) for r in responses]
    assert _judge_pairs(reads, judges.job_progress, judges.job_etag) == 1
    assert obs.d5_breaches == [] and obs.schema_breaches == []
    assert _proxy_findings(fixed_d7) == []
