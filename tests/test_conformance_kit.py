"""Proving the kit (issue #4): it passes the correct mock, fails each broken target with the
right rule, reports what it did not run, and keeps its exit codes."""

from __future__ import annotations

import concurrent.futures as cf
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conformance import Target, bundled, run
from conformance.registry import all_checks
from tests.broken.variants import MOCK_ARGS, VARIANTS
from tests.support import ids

pytest_plugins = ["pytester"]


def kit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", "run", *args],
                          capture_output=True, text=True, timeout=timeout)


def _run_variant(name: str):
    args = MOCK_ARGS.get(name, bundled.MOCK_ARGS)
    mock = bundled.start_mock(*args, "--broken", name, module="tests.broken")
    try:
        return run(bundled.target_for(mock.url), schemathesis=False, jobs=8)
    finally:
        mock.stop()


@pytest.fixture(scope="module")
def broken_results():
    """Every broken variant, three at a time: the runs mostly wait on jobs, not on the CPU."""
    with cf.ThreadPoolExecutor(3) as pool:
        return dict(zip(sorted(VARIANTS), pool.map(_run_variant, sorted(VARIANTS)),
                        strict=True))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_broken_target_fails_with_its_rule(broken_results, name):
    result = broken_results[name]
    rule = VARIANTS[name][0]
    failed = {o.rule for o in result.failed}
    assert result.exit_code == 1, f"{name}: the kit passed a broken target"
    assert rule in failed, f"{name}: expected {rule} to fail, failed: {sorted(failed)}"


def test_every_rule_has_a_check():
    rules = {c.rule for c in all_checks()}
    assert rules == {f"R{i}" for i in range(1, 13)} | {"D6", "D7", "D8"}


def test_cli_passes_the_correct_mock_and_writes_reports(tmp_path):
    junit, md, page = tmp_path / "kit.xml", tmp_path / "kit.md", tmp_path / "kit.html"
    out = kit("--mock", "--quick", "--junit-xml", str(junit), "--report", str(md))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) == len(all_checks()) + 1
    assert suite.get("skipped") == "0"
    text = md.read_text()
    for rule in [f"R{i}" for i in range(1, 13)] + ["D6", "D7", "D8", "SCHEMA"]:
        assert f"| {rule} | passed |" in text, rule
    assert "passed" in out.stdout and "0 failed" in out.stdout
    out = kit("--mock", "--quick", "--no-schemathesis", "--only", "R1", "--report", str(page))
    assert out.returncode == 0 and page.read_text().startswith("<!doctype html>")


def test_cli_fails_a_broken_target_with_request_and_response_in_the_report(tmp_path):
    mock = bundled.start_mock(*bundled.MOCK_ARGS, "--broken", "brief_replaced",
                              module="tests.broken")
    try:
        junit, report = tmp_path / "kit.xml", tmp_path / "kit.md"
        out = kit("--base-url", mock.url, "--api-key", ids.FULL, "--project-id", ids.PRJ_AUTO,
                  "--no-schemathesis", "--poll-interval", "0.05", "--junit-xml", str(junit),
                  "--report", str(report))
    finally:
        mock.stop()
    assert out.returncode == 1, out.stdout[-3000:]
    failures = [c for c in ET.parse(junit).getroot().iter("testcase")
                if c.find("failure") is not None]
    assert {c.get("classname") for c in failures} == {"R5"}
    text = report.read_text()
    assert "| R5 | failed |" in text and "> GET " in text and "< 200" in text
    assert ids.FULL not in text and "lp_test_…" in text  # keys masked
    assert "FAILED R5" in out.stdout


@pytest.fixture(scope="module")
def real_clock_mock():
    mock = bundled.start_mock(*bundled.MOCK_ARGS)
    yield mock
    mock.stop()


def test_checks_without_their_inputs_are_reported_not_run(real_clock_mock):
    result = run(Target(base_url=real_clock_mock.url, api_key=ids.FULL), schemathesis=False)
    assert result.exit_code == 0
    not_run = [o for o in result.outcomes if o.status == "not run"]
    assert {o.rule for o in not_run} >= {"R1", "R3", "R8", "R10", "D6", "D7"}
    r8 = next(o for o in not_run if o.rule == "R8")
    assert r8.option == "--project-id"
    passed = {o.name for o in result.outcomes if o.status == "passed"}
    assert {"r12_not_found", "d8_unauthenticated", "d8_bearer"} <= passed


def test_existing_containers_can_stand_in_for_a_project(real_clock_mock):
    result = run(Target(base_url=real_clock_mock.url, api_key=ids.FULL, poll_interval=0.05,
                        container_ids=(ids.CNT_NOT_REQUIRED,)),
                 schemathesis=False, only=["R3", "R4", "R6", "R10"])
    assert result.exit_code == 0 and len(result.outcomes) == 4


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_exit_status_2_for_usage_errors_and_unreachable_targets(live):
    assert kit().returncode == 2
    assert kit("--base-url", live.url).returncode == 2  # no key
    out = kit("--base-url", f"http://127.0.0.1:{_closed_port()}", "--api-key", "k")
    assert out.returncode == 2 and "unreachable" in out.stderr
    out = kit("--base-url", live.url, "--api-key", "lp_test_wrong", "--no-schemathesis")
    assert out.returncode == 2 and "401" in out.stderr
    assert kit("--mock", "--only", "R99").returncode == 2
    assert kit("--mock", "--report", "x.pdf").returncode == 2


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
