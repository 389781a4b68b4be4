"""Proving the kit (D10): it passes the correct mock with no inconclusive, fails each
broken variant with exactly the rules the variant names and nothing else (and no 5xx from the
variant), passes targets that rate-limit or add fields, calls what it cannot observe
inconclusive, reports what it did not run, and keeps its exit codes and secrets."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import json
import os
import socket
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from layers_kit.conformance import Target, bundled, run
from layers_kit.conformance import schema_phase as sp
from layers_kit.conformance.client import Client
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.failures import Inconclusive
from layers_kit.conformance.registry import Check, all_checks
from layers_kit.conformance.runner import run_check
from layers_kit.conformance.verdicts import (
    ERROR,
    INCONCLUSIVE,
    NOT_RUN,
    PASSED,
    WAIVED,
    rule_verdict,
)
from layers_kit.conformance.waivers import Waiver
from tests.broken.variants import VARIANTS
from tests.support import ids
from tests.support.fixtures import with_main_org_keys
from tests.support.process import run_kit

pytest_plugins = ["pytester"]
VARIANT_RUNS_AT_ONCE = 4
ALL_RULES = {f"R{i}" for i in range(1, 13)} | {"D5", "D6", "D7", "D8", "D16", "SCHEMA"}
# Checks that need an input `--mock` does not give yet (the option is not wired): not run there.
NEEDS_CREDITS = {"r11_cancel_releases_credits"}


CREDITS_KEY = "lp_test_thrifty"
# More keys of the Demo org (--extra-api-key): the variants' verdicts must not depend on them.
SPREAD_KEYS = ("lp_spread_key_1", "lp_spread_key_2", "lp_spread_key_3")
CREDITS_CONTAINER = "cnt_00000000-0000-4000-8000-000000000501"


def _credits_fixtures() -> str:
    """The bundled fixtures plus an org holding 300 credits (below one 600-credit probe, above
    a 120-credit regeneration), its key, project and a completed container; and SPREAD_KEYS."""
    import yaml

    from layers_kit.mock.domain.fixtures import load

    fx = load().data
    org, project = "org_00000000-0000-4000-8000-00000000000d", \
        "prj_00000000-0000-4000-8000-000000000005"
    fx["orgs"].append({"id": org, "name": "Thrifty", "credits": 300})
    fx["keys"].append({"key": CREDITS_KEY, "id": "key_thrifty_full", "org": org,
                       "scopes": sorted(bundled.ALL_SCOPES)})
    fx["projects"].append({"id": project, "org": org, "policy": "auto_approve"})
    with_main_org_keys(SPREAD_KEYS, fx, prefix="key_spread")
    fx["containers"].append({"id": CREDITS_CONTAINER, "project": project,
                             "label": "Thrifty's container", "format": "video_remix",
                             "approval": "not_required",
                             "brief": {"topic": "Saving credits", "angle": "Counting",
                                       "cta": "Spend less.", "valuePropositions": []}})
    fd, path = tempfile.mkstemp(prefix="layers-credits-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(fx, f)
    return path


def _credits_target(url: str, **overrides) -> Target:
    """The bundled mock's target plus the input that makes credits observable
    (r11_cancel_releases_credits): a key of an org with a small known balance and a completed
    container of it. The checks spread over SPREAD_KEYS too, and those that change the review
    policy run alongside the others in the door's second project (--policy-project-id)."""
    target = dataclasses.replace(bundled.target_for(url, **overrides), credits_key=CREDITS_KEY,
                                 credits_container_id=CREDITS_CONTAINER,
                                 extra_api_keys=SPREAD_KEYS)
    assert target.policy_apart, "the door names a second project for the policy checks"
    return target




# The variants that break a rule of the checks that change the review policy run twice: as
# the others (three more keys, those checks alongside in --policy-project-id), and, named with
# ALONE, as a run without those options goes (one key, those checks alone at the end in
# --project-id). Both must fail exactly the rules the variant names.
ALONE = "@alone"
POLICY_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.also_alone)
RUNS = (*VARIANTS, *(name + ALONE for name in POLICY_VARIANTS))


def _variant(run_name: str):
    return VARIANTS[run_name.removesuffix(ALONE)]


def _run_variant(name: str):
    """The variant's run, or the exception that stopped it (reported by its own test)."""
    variant = _variant(name)
    fixtures = _credits_fixtures()
    try:
        mock = bundled.start_mock(*variant.mock_args, "--fixtures", fixtures, "--broken",
                                  name.removesuffix(ALONE), module="tests.broken")
    except RuntimeError as exc:
        os.unlink(fixtures)
        return exc
    try:
        target = _credits_target(mock.url, max_wait=30)
        if variant.one_key:
            target = dataclasses.replace(target, extra_api_keys=())
        if name.endswith(ALONE):
            target = dataclasses.replace(target, extra_api_keys=(), policy_project_id=None)
        return run(target, schemathesis=False, jobs=8)
    except Exception as exc:  # one variant's trouble must not hide the others
        return exc
    finally:
        mock.stop()
        os.unlink(fixtures)


def _result(results: dict, name: str):
    result = results[name]
    if isinstance(result, Exception):
        pytest.fail(f"{name} could not be run: {result}")
    return result


def _stage_seconds(name: str) -> float:
    args = _variant(name).mock_args
    return float(args[args.index("--stage-seconds") + 1])


# The slowest stages first (rate_limited's run is the longest, as it also waits out its 429s),
# dealt alternately into two halves: pytest-xdist (--dist loadscope) runs each half's class on
# a worker of its own, so the runs' kit work (CPU in the test process) is spread over two
# processes, and no long run starts last and sets the wall time alone.
# Each half's own test reads one run: rate_limited (the longest) is dealt first, to the first
# half; stages_too_fast (the shortest, 1 s) is added to the second.
_LONGEST_FIRST = sorted((n for n in RUNS if n != "stages_too_fast"),
                        key=lambda n: (-_stage_seconds(n), n))
HALVES = (tuple(_LONGEST_FIRST[0::2]), (*_LONGEST_FIRST[1::2], "stages_too_fast"))


def _run_variants(names: tuple[str, ...]) -> dict:
    """The variants, several at a time: the runs mostly wait on jobs, not on the CPU."""
    with cf.ThreadPoolExecutor(VARIANT_RUNS_AT_ONCE) as pool:
        return dict(zip(names, pool.map(_run_variant, names), strict=True))


def _fails_exactly_the_rules_it_names(variant_results: dict, name: str) -> None:
    result, variant = _result(variant_results, name), _variant(name)
    failed = {o.rule for o in result.failed}
    detail = [(o.status, o.name, o.message[:200]) for o in result.outcomes
              if o.status not in (PASSED, NOT_RUN)]
    assert failed == set(variant.fails), f"{name}: {detail}"
    assert result.exit_code == (1 if variant.fails else 0)
    assert not result.with_status(ERROR), f"{name}: the kit failed: {detail}"
    assert {o.name for o in result.with_status(INCONCLUSIVE)} == set(variant.inconclusive), \
        f"{name}: {detail}"
    assert not result.observations.server_errors, f"{name}: the variant answered 5xx"
    for o in result.failed:  # evidence: the decisive exchange, not the last six polls
        assert len(o.exchanges) == 1 and o.exchanges[0].status is not None, o.name


def test_the_two_halves_hold_every_variant_once():
    assert sorted(HALVES[0] + HALVES[1]) == sorted(RUNS)
    assert set(POLICY_VARIANTS) == {"policy_accepts_invalid", "review_first_n_ignored",
                                    "schedule_pending_accepted"}
    assert "rate_limited" in HALVES[0] and "stages_too_fast" in HALVES[1]


class _BrokenVariantsHalf:
    """Half of the variants (`half`), run once for the class: one unit for pytest-xdist, so
    that both workers run variants from the start."""

    half: int

    def pytest_generate_tests(self, metafunc):
        if "name" in metafunc.fixturenames:
            metafunc.parametrize("name", sorted(HALVES[self.half]))

    @pytest.fixture(scope="class")
    def variant_results(self):
        return _run_variants(HALVES[self.half])

    def test_each_variant_fails_exactly_the_rules_it_names(self, variant_results, name):
        _fails_exactly_the_rules_it_names(variant_results, name)


@pytest.mark.e2e
@pytest.mark.slow
class TestBrokenVariantsFirstHalf(_BrokenVariantsHalf):
    half = 0

    def test_a_rate_limiting_target_passes_because_the_kit_waits(self, variant_results):
        result = _result(variant_results, "rate_limited")
        refused = sum(n for (_, status), n in result.coverage().items() if status == 429)
        assert refused > 0, "the variant never rate-limited the run: the test proves nothing"
        assert result.exit_code == 0 and {o.status for o in result.outcomes} <= {PASSED, NOT_RUN}


@pytest.mark.e2e
@pytest.mark.slow
class TestBrokenVariantsSecondHalf(_BrokenVariantsHalf):
    half = 1

    def test_stages_faster_than_any_poll_are_inconclusive_not_passed(self, variant_results):
        result = _result(variant_results, "stages_too_fast")
        verdicts = {o.name: o for o in result.outcomes}
        for name in ("d7_stage_order", "d7_progress_monotonic"):
            assert verdicts[name].status == INCONCLUSIVE
            assert "running stage" in verdicts[name].message and verdicts[name].needed
        assert result.rules()["D7"] == "partial" and result.exit_code == 0


def test_every_rule_has_a_check():
    assert {c.rule for c in all_checks()} | {"SCHEMA"} == ALL_RULES


def test_rule_verdicts_pass_only_when_every_check_ran_and_passed():
    assert rule_verdict([PASSED, PASSED]) == PASSED
    assert rule_verdict([PASSED, NOT_RUN]) == "partial"
    assert rule_verdict([PASSED, "failed", INCONCLUSIVE]) == "failed"
    assert rule_verdict([INCONCLUSIVE, NOT_RUN]) == INCONCLUSIVE
    assert rule_verdict([NOT_RUN, NOT_RUN]) == NOT_RUN
    assert rule_verdict([WAIVED]) == WAIVED


def test_cli_passes_the_correct_mock_with_no_inconclusive_and_keeps_its_reports(tmp_path):
    reports = tmp_path / "reports"
    junit, md, js = reports / "kit.xml", reports / "kit.md", reports / "kit.json"
    page = reports / "kit.html"
    out = run_kit("--mock", "--junit-xml", str(junit), "--report", str(js), "--report", str(md),
              "--report", str(page), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and suite.get("skipped") == str(len(NEEDS_CREDITS))
    assert suite.get("errors") == "0" and int(suite.get("tests")) == len(all_checks()) + 1
    report = json.loads(js.read_text())
    assert report["schema"] == "layers-conformance-report" and report["version"] == 1
    assert report["counts"][INCONCLUSIVE] == 0 and report["counts"]["passed"] == \
        len(all_checks()) + 1 - len(NEEDS_CREDITS)
    # R11's credits check needs --credits-key, which --mock does not give: R11 is partial
    assert {r["id"]: r["verdict"] for r in report["rules"]} == \
        {**dict.fromkeys(ALL_RULES, PASSED), "R11": "partial"}
    # coverage: operation x documented status, observed or not
    seen = {(r["operation"], r["status"]) for r in report["coverage"] if r["observed"]}
    assert {("regenerateContent", "202"), ("regenerateContent", "409"), ("getJob", "304"),
            ("regenerateContent", "402"), ("cancelJob", "202")} <= seen
    assert all(r["documented"] for r in report["coverage"])
    # what the run spent, printed and reported
    assert "This run spent:" in out.stdout and report["spend"]["jobStarts"] > 20
    # Schemathesis: JUnit kept next to the reports, no key in its command, nothing left behind
    assert (reports / "schemathesis-junit.xml").exists()
    assert report["schemathesis"]["junit"] == str(reports / "schemathesis-junit.xml")
    assert ids.FULL not in report["schemathesis"]["command"]
    assert not list(tmp_path.glob(".hypothesis")) and not list(tmp_path.glob(".schemathesis"))
    for path in reports.iterdir():
        assert ids.FULL not in path.read_text(errors="replace"), path
    assert page.read_text().startswith("<!doctype html>")
    text = md.read_text()
    for rule in ALL_RULES - {"R11"}:
        assert f"| {rule} | passed |" in text, rule
    assert "| R11 | partial |" in text
    assert "## Coverage: operation x status" in text and "## What this run spent" in text


def test_quick_is_a_lighter_profile_than_the_default():
    quick, default = sp.PROFILES["quick"], sp.PROFILES["default"]
    assert quick["max_examples"] < default["max_examples"]
    assert set(quick["phases"].split(",")) < set(default["phases"].split(","))


def test_schemathesis_gets_keys_by_environment_and_real_ids(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kw):
        config = Path(cmd[cmd.index("--config-file") + 1])
        seen.update(cmd=cmd, env=kw["env"], cwd=kw["cwd"], mode=config.stat().st_mode & 0o777,
                    config=config.read_text())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(sp.subprocess, "run", fake_run)
    res = sp.run_schemathesis("http://127.0.0.1:9", "lp_secret_key_123", profile="quick",
                              report_dir=tmp_path, project_id=ids.PRJ_AUTO,
                              container_id=ids.CNT_NOT_REQUIRED, exclude_checks=["x_check"],
                              contract=Contract("http://127.0.0.1:9"), prepare=False,
                              raise_unjudged=False)
    assert not any("lp_secret_key_123" in c for c in seen["cmd"])
    assert seen["env"][sp.KEY_ENV] == "lp_secret_key_123" and seen["mode"] == 0o600
    assert "${" + sp.KEY_ENV + "}" in seen["config"] and "lp_secret" not in seen["config"]
    assert f'"path.projectId" = "{ids.PRJ_AUTO}"' in seen["config"]
    assert f'"path.containerId" = "{ids.CNT_NOT_REQUIRED}"' in seen["config"]
    assert seen["cwd"] != Path.cwd() and "x_check" in seen["cmd"]
    assert str(tmp_path / "schemathesis-junit.xml") in seen["cmd"]
    # it ran, but reached no operation (no HAR): inconclusive, never passed
    assert not res.ok and res.verdict == sp.INCONCLUSIVE


@pytest.fixture(scope="module")
def brief_replaced_mock():
    mock = bundled.start_mock(*bundled.MOCK_ARGS, "--broken", "brief_replaced",
                              module="tests.broken")
    yield mock
    mock.stop()


def test_a_failure_shows_the_decisive_exchange_and_a_field_diff(brief_replaced_mock, tmp_path):
    junit, report = tmp_path / "kit.xml", tmp_path / "kit.md"
    out = run_kit("--base-url", brief_replaced_mock.url, "--api-key", ids.FULL,
              "--project-id", ids.PRJ_AUTO, "--no-schemathesis", "--poll-interval", "0.05",
              "--only", "R5", "--junit-xml", str(junit), "--report", str(report))
    assert out.returncode == 1, out.stdout[-3000:]
    failures = [c for c in ET.parse(junit).getroot().iter("testcase")
                if c.find("failure") is not None]
    assert {c.get("classname") for c in failures} == {"R5"}
    text = report.read_text()
    assert "| R5 | failed |" in text and "the decisive exchange:" in text
    assert "> GET " in text and "< 200" in text
    assert "field by field:" in text and "angle: expected" in text
    assert ids.FULL not in text and "lp_test_…" in text  # keys masked
    assert "FAILED R5" in out.stdout


def test_waivers_report_waived_until_they_expire(brief_replaced_mock, tmp_path):
    target = Target(base_url=brief_replaced_mock.url, api_key=ids.FULL,
                    project_id=ids.PRJ_AUTO, poll_interval=0.05)
    today = dt.date(2026, 6, 1)
    waived = run(target, only=["R5"], schemathesis=False, today=today,
                 waivers=[Waiver("R5", "known: PLAT-1", dt.date(2026, 12, 31))])
    assert waived.exit_code == 0 and {o.status for o in waived.outcomes} == {WAIVED}
    assert waived.rules()["R5"] == WAIVED and "PLAT-1" in waived.outcomes[0].message
    expired = run(target, only=["R5"], schemathesis=False, today=today,
                  waivers=[Waiver("r5_brief_merge", "old", dt.date(2026, 1, 1))])
    assert expired.exit_code == 1 and expired.expired_waivers


def test_waive_file_formats_and_usage_errors(tmp_path, real_clock_mock):
    good = tmp_path / "w.yaml"
    good.write_text("waivers:\n  - id: R12\n    reason: not yet\n    expires: 2999-01-01\n")
    out = run_kit("--base-url", real_clock_mock.url, "--api-key", ids.FULL, "--no-schemathesis",
              "--only", "R12", "--waive", str(good))
    assert out.returncode == 0 and "waived" in out.stdout
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps([{"id": "R12"}]))
    out = run_kit("--base-url", real_clock_mock.url, "--api-key", ids.FULL, "--waive", str(bad))
    assert out.returncode == 2 and "reason" in out.stderr


@pytest.fixture(scope="module")
def real_clock_mock():
    mock = bundled.start_mock(*bundled.MOCK_ARGS)
    yield mock
    mock.stop()


def test_checks_without_their_inputs_are_not_run_and_their_rules_partial(real_clock_mock):
    result = run(Target(base_url=real_clock_mock.url, api_key=ids.FULL), schemathesis=False)
    assert result.exit_code == 0
    not_run = result.with_status(NOT_RUN)
    assert {o.rule for o in not_run} >= {"R1", "R3", "R8", "R10", "D6", "D7"}
    assert next(o for o in not_run if o.rule == "R8").option == "--project-id"
    passed = {o.name for o in result.outcomes if o.status == PASSED}
    assert {"r12_not_found", "d8_unauthenticated", "d8_bearer", "d5_error_envelope"} <= passed
    rules = result.rules()
    assert rules["R12"] == rules["D6"] == rules["D8"] == "partial"  # never "passed"
    assert rules["R1"] == NOT_RUN


def test_keys_without_the_scopes_or_refused_make_their_checks_inconclusive(real_clock_mock):
    result = run(Target(base_url=real_clock_mock.url, api_key=ids.FULL, project_id=ids.PRJ_AUTO,
                        poll_interval=0.05, broke_key=ids.READONLY,
                        broke_container_id=ids.CNT_BROKE, readonly_key="lp_test_no_such_key"),
                 schemathesis=False, only=["R12", "D8"])
    by_name = {o.name: o for o in result.outcomes}
    billing = by_name["r12_billing_exhausted"]
    assert billing.status == INCONCLUSIVE and "content:write" in billing.message
    assert "--broke-key" in billing.needed
    scope = by_name["d8_forbidden_scope"]
    assert scope.status == INCONCLUSIVE and "refuses --readonly-key" in scope.message
    assert result.exit_code == 0 and not result.failed


def test_an_exception_in_the_kit_is_an_error_never_a_failure(real_clock_mock):
    def broken_check(ctx):
        ctx.api.get("/v1/content/" + ids.MISSING)
        raise RuntimeError("a bug in the kit")

    target = Target(base_url=real_clock_mock.url, api_key=ids.FULL)
    o = run_check(Check("R12", "a check with a bug", broken_check), target,
                  Contract(target.base_url), iter(()))
    assert o.status == ERROR and "RuntimeError: a bug in the kit" in o.traceback


def test_retry_after_is_honoured_within_max_wait(real_clock_mock):
    slept: list[float] = []
    contract = Contract(real_clock_mock.url)
    limited = {"Prefer": "error=RATE_LIMITED"}
    c = Client(real_clock_mock.url, ids.FULL, contract, [], max_wait=5, sleep=slept.append)
    with pytest.raises(Inconclusive) as info:
        c.get("/v1/content/" + ids.CNT_NOT_REQUIRED, headers=limited)
    assert slept and sum(slept) <= 5 and "--max-wait 5" in str(info.value)
    served = Client(real_clock_mock.url, ids.FULL, contract, [], max_wait=0)
    assert served.get("/v1/content/" + ids.CNT_NOT_REQUIRED).status_code == 200


def test_the_contract_checks_formats_on_every_response_it_validates(real_clock_mock):
    """The kit shares one format checker across validations (conformance/contract.py): a
    date-time that is not one is still refused, the second time as the first."""
    contract = Contract(real_clock_mock.url)
    with httpx.Client(base_url=real_clock_mock.url, headers={"X-Api-Key": ids.FULL}) as c:
        good = c.get("/v1/content/" + ids.CNT_NOT_REQUIRED)
    assert good.status_code == 200 and contract.response_errors(good) == []
    body = {**good.json(), "updatedAt": "yesterday"}
    bad = httpx.Response(200, headers=good.headers, json=body, request=good.request)
    for _ in range(2):
        assert "updatedAt: 'yesterday' is not a 'date-time'" in contract.response_errors(bad)
    assert contract.response_errors(good) == []


def test_existing_containers_can_stand_in_for_a_project(real_clock_mock):
    result = run(Target(base_url=real_clock_mock.url, api_key=ids.FULL, poll_interval=0.05,
                        container_ids=(ids.CNT_NOT_REQUIRED,)),
                 schemathesis=False, only=["R3", "R4", "R6", "R10"])
    assert result.exit_code == 0 and len(result.outcomes) == 4
    assert {o.status for o in result.outcomes} == {PASSED}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exit_status_2_for_usage_errors_and_unreachable_targets(live):
    assert run_kit().returncode == 2
    assert run_kit("--base-url", live.url).returncode == 2  # no key
    out = run_kit("--base-url", f"http://127.0.0.1:{_closed_port()}", "--api-key", "k")
    assert out.returncode == 2 and "unreachable" in out.stderr
    out = run_kit("--base-url", live.url, "--api-key", "lp_test_wrong", "--no-schemathesis")
    assert out.returncode == 2 and "401" in out.stderr
    assert run_kit("--mock", "--only", "R99").returncode == 2
    assert run_kit("--mock", "--report", "x.pdf").returncode == 2


def test_help_says_what_a_run_spends_and_the_verdicts():
    out = run_kit("--help")
    assert out.returncode == 0
    for word in ("inconclusive", "waived", "containers", "credits", "scheduled", "--max-wait",
                 "--waive", "--exclude-check", ".json"):
        assert word in out.stdout, word


def test_pytest_plugin_runs_the_checks(pytester, real_clock_mock):
    live = real_clock_mock
    pytester.makepyfile("def test_own(layers_target):\n"
                        "    assert layers_target.project_id\n")
    result = pytester.runpytest_subprocess(
        "--layers-base-url", live.url, "--layers-api-key", ids.FULL,
        "--layers-project-id", ids.PRJ_AUTO, "--layers-only", "R1", "--layers-only", "D8",
        "-p", "no:cacheprovider")
    picked = [c for c in all_checks() if c.rule in ("R1", "D8")]
    unmet = [c for c in picked if {"readonly", "other_org"} & set(c.needs)]
    assert len(unmet) == 2  # readonly and other-org inputs are not given: skipped, not passed
    result.assert_outcomes(passed=1 + len(picked) - len(unmet), skipped=len(unmet))


def test_keys_can_come_from_the_environment(real_clock_mock):
    out = run_kit("--base-url", real_clock_mock.url, "--no-schemathesis", "--only", "R12",
              env={"LAYERS_API_KEY": ids.FULL})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-1000:]


def _openapi_core_verdict(reference, response: httpx.Response) -> list[str]:
    """What unmodified openapi-core says of a response (the kit's reference)."""
    from layers_kit.conformance.contract import _causes, _Request, _Response

    try:
        reference.validate_response(_Request(response.request), _Response(response))
    except Exception as exc:
        return _causes(exc)
    return []


def test_the_memoised_validators_catch_each_kind_of_breach_as_openapi_core_does():
    """conformance/validators.py remembers spec lookups: each kind of broken response is
    still caught, with openapi-core's own message, on the first call and on a repeat."""
    from openapi_core import OpenAPI

    base = "http://127.0.0.1:9"
    contract = Contract(base)
    reference = OpenAPI.from_dict(contract.doc)
    job = contract.doc["components"]["examples"]["CompletedJob"]["value"]
    get_job = httpx.Request("GET", f"{base}/v1/jobs/{job['jobId']}")
    headers = {"X-Request-Id": "req_01HXZ9G7KMV2QX8Y1S5RJW3B7T", "ETag": '"v1"',
               "X-RateLimit-Endpoint-Class": "read", "Content-Type": "application/json"}

    def reply(status=200, drop=(), body=job, **changed):
        shown = {k: v for k, v in {**headers, **changed}.items() if k not in drop}
        return httpx.Response(status, headers=shown, content=json.dumps(body).encode(),
                              request=get_job)

    broken = {
        "undocumented status": (reply(299), "Unknown response http status: 299"),
        "missing required header": (reply(drop=("ETag",)), "Missing required header: ETag"),
        "header outside its pattern": (reply(**{"X-Request-Id": "nope"}), "'nope' does not match"),
        "header outside its enum": (reply(**{"X-RateLimit-Endpoint-Class": "x"}),
                                    "'x' is not one of"),
        "integer header not an integer": (
            reply(429, body={"error": {"code": "RATE_LIMITED", "message": "m",
                                       "requestId": headers["X-Request-Id"]}},
                  **{"Retry-After": "soon"}), "Failed to cast value to integer type: soon"),
        "content type not documented": (reply(**{"Content-Type": "text/plain"}), "text/plain"),
        "schema breach": (reply(body={k: v for k, v in job.items() if k != "stage"}),
                          "'stage' is a required property"),
        "bad format": (reply(body={**job, "updatedAt": "yesterday"}),
                       "updatedAt: 'yesterday' is not a 'date-time'"),
        "path not documented": (httpx.Response(200, headers=headers, request=httpx.Request(
            "GET", f"{base}/v1/nothing/here")), "Path not found"),
    }
    assert contract.response_errors(reply()) == [] == _openapi_core_verdict(reference, reply())
    for _ in range(2):  # the second time from the memo
        for kind, (response, expected) in broken.items():
            errors = contract.response_errors(response)
            assert errors == _openapi_core_verdict(reference, response), kind
            assert any(expected in e for e in errors), f"{kind}: {errors}"
        assert contract.response_errors(reply()) == []
    bad_request = httpx.Request("POST", f"{base}/v1/content/{job['containerId']}/regenerate",
                                headers={"X-Api-Key": ids.FULL}, json={"bogus": 1})
    for _ in range(2):
        errors = contract.request_errors(bad_request)
        assert errors
        try:
            reference.validate_request(_request_of(bad_request))
        except Exception as exc:
            from layers_kit.conformance.contract import _causes
            assert errors == _causes(exc)


def test_the_memoised_request_validator_judges_each_kind_of_request_as_openapi_core_does():
    """The request validator remembers the path finder's answer per template, the parameter
    and security lists per operation and the body's facts: each kind of request (valid, or
    broken in its key, path, parameters, headers or body) gets unmodified openapi-core's
    verdict, word for word, on the first call and on repeats with other ids."""
    from openapi_core import OpenAPI

    from layers_kit.conformance.contract import _causes

    base = "http://127.0.0.1:9/prefix"
    contract = Contract(base)
    reference = OpenAPI.from_dict(contract.doc)
    cnt = "cnt_00000000-0000-4000-8000-0000000001{:02d}"
    key = {"X-Api-Key": ids.FULL}

    def cases(n: int) -> dict[str, httpx.Request]:
        regen = f"{base}/v1/content/{cnt.format(n)}/regenerate"
        return {
            "valid": httpx.Request("POST", regen, headers={**key, "Idempotency-Key": f"k{n}"},
                                   json={"preserveAssets": True}),
            "valid, bearer": httpx.Request("GET", f"{base}/v1/content/{cnt.format(n)}",
                                           headers={"Authorization": f"Bearer {ids.FULL}"}),
            "no key": httpx.Request("GET", f"{base}/v1/content/{cnt.format(n)}"),
            "path id outside its pattern": httpx.Request("GET", f"{base}/v1/content/x{n}",
                                                         headers=key),
            "body outside its schema": httpx.Request("POST", regen, headers=key,
                                                     json={"preserveAssets": "yes", "x": n}),
            "no body": httpx.Request("POST", f"{base}/v1/projects/prj_{n}/content",
                                     headers=key),
            "body not JSON": httpx.Request("POST", regen, headers={
                **key, "Content-Type": "text/plain"}, content=b"hello"),
            "empty Idempotency-Key": httpx.Request("POST", regen, headers={
                **key, "Idempotency-Key": ""}, json={}),
            "asset id and If-None-Match": httpx.Request(
                "GET", f"{base}/v1/content/{cnt.format(n)}/assets/ast_{n}", headers=key),
            "job poll": httpx.Request("GET", f"{base}/v1/jobs/job_{n}", headers={
                **key, "If-None-Match": f'"v{n}"'}),
            "undocumented method": httpx.Request("DELETE", f"{base}/v1/jobs/job_{n}",
                                                 headers=key),
            "undocumented path": httpx.Request("GET", f"{base}/v1/nothing/{n}", headers=key),
            "another server": httpx.Request("GET", f"http://127.0.0.1:9/v1/content/{n}",
                                            headers=key),
        }

    def reference_verdict(request: httpx.Request) -> list[str]:
        try:
            reference.validate_request(_request_of(request))
        except Exception as exc:
            return _causes(exc)
        return []

    for n in range(3):  # the first call fills the memo; the others read it, with other ids
        for kind, request in cases(n).items():
            assert contract.request_errors(request) == reference_verdict(request), kind
    assert contract.request_errors(cases(0)["valid"]) == []
    assert contract.request_errors(cases(0)["no key"])
    assert contract.request_errors(cases(0)["body outside its schema"])


def _request_of(request: httpx.Request):
    from layers_kit.conformance.contract import _Request

    return _Request(request)
