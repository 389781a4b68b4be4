"""The client rules C1-C6 (contract/behaviour.py): each judge on a careful and a careless
sequence of calls, so each rule is seen both holding and broken."""

from __future__ import annotations

import pytest

from layers_kit.contract.behaviour import JUDGES, MIN_POLL_INTERVAL, RULES, Call, judge

REGEN = "/v1/content/cnt_1/regenerate"
JOB = "/v1/jobs/job_1"


def start(at: float, status: int, key: str | None, fp: str = "fp1", **kw) -> Call:
    return Call(at, "me", "POST", REGEN, "regenerateContent", status, key, fp,
                rate_class="job_start", container_id="cnt_1", **kw)


def poll(at: float, status: str = "running", *, inm: bool = True, etag: str = '"v"') -> Call:
    return Call(at, "me", "GET", JOB, "getJob", 200, if_none_match=inm, etag=etag,
                rate_class="read", job_id="job_1", job_status=status)


CASES = {
    "C1": ([start(0, 503, "k1"), start(2, 202, "k1")],
           [start(0, 0, "k1"), start(2, 202, "k2")]),
    "C2": ([start(0, 202, "k1"), start(5, 202, "k1")],
           [start(0, 202, "k1"), start(5, 422, "k1", fp="fp2")]),
    "C3": ([start(0, 429, "k1", retry_after=2.0), start(2.05, 202, "k1")],
           [start(0, 429, "k1", retry_after=2.0), start(0.5, 429, "k1")]),
    "C4": ([poll(0, inm=False), poll(MIN_POLL_INTERVAL), poll(2 * MIN_POLL_INTERVAL)],
           [poll(0, inm=False), poll(0.2)]),
    "C5": ([poll(0), poll(1.5, "completed")],
           [poll(0, "completed"), poll(1.5, "completed")]),
    "C6": ([start(0, 409, None, error_code="CONFLICT", job_id="job_1"), poll(1), poll(2.5,
                                                                                "completed"),
            start(3, 202, "k3")],
           [start(0, 409, None, error_code="CONFLICT", job_id="job_1"),
            start(0.1, 409, None, error_code="CONFLICT", job_id="job_1")]),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_holds_for_a_careful_client_and_breaks_for_a_careless_one(rule):
    careful, careless = CASES[rule]
    occasions, breaches = JUDGES[rule](careful)
    assert occasions >= 1 and breaches == [], breaches
    occasions, breaches = JUDGES[rule](careless)
    assert breaches and all(b.rule == rule for b in breaches)
    assert breaches[0].calls[-1] in careless  # the exchanges that show it


def test_a_poll_without_if_none_match_after_an_etag_breaks_c4():
    _, breaches = JUDGES["C4"]([poll(0), poll(1.5, inm=False)])
    assert [b.message for b in breaches] == [
        "job job_1 polled again without If-None-Match, though the previous answer had an ETag"]


def test_judge_groups_by_client_and_says_not_observed():
    calls = [start(0, 202, "k1"), Call(0, "other", "GET", JOB, "getJob", 200, job_id="job_9")]
    report = judge(calls)
    assert set(report) == {"me", "other"}
    verdicts = {r.rule: r.verdict for r in report["me"]}
    assert verdicts == dict.fromkeys(RULES, "not observed")
