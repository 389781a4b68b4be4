"""The Schemathesis phase (SCHEMA) really runs: fresh Idempotency-Keys, pacing on 429s, posts
dated a year ahead, Schemathesis' warnings and what each operation reached carried into the
verdict, and transport trouble never called a failure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from layers_kit.conformance import bundled
from layers_kit.conformance import schema_phase as sp
from layers_kit.conformance.contract import Contract
from tests.support import ids

BASE = "http://127.0.0.1:9"


def _har(path: Path, entries: list[tuple[str, str, int, dict | None]]) -> None:
    log = [{"request": {"method": m, "url": BASE + u},
            "response": {"status": s, "headers": [],
                         "content": {"text": json.dumps(b) if b is not None else ""}}}
           for m, u, s, b in entries]
    path.write_text(json.dumps({"log": {"entries": log}}))


def _all_ops_accepted() -> list[tuple[str, str, int, dict | None]]:
    c = f"/v1/content/{ids.CNT_NOT_REQUIRED}"
    return [("POST", c + "/regenerate", 202, {}), ("POST", f"/v1/projects/{ids.PRJ_AUTO}/content",
                                                  202, {}),
            ("POST", c + "/approve", 200, {}), ("POST", c + "/schedule", 201, {}),
            ("POST", "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T/cancel", 200, {}),
            ("PATCH", f"/v1/projects/{ids.PRJ_AUTO}/content-review-policy", 200, {})]


def _fake(monkeypatch, *, returncode=0, stdout="", har=(), failures=(), seen=None):
    def fake_run(cmd, **kw):
        if seen is not None:
            seen.update(cmd=cmd, env=kw["env"], config=Path(
                cmd[cmd.index("--config-file") + 1]).read_text(),
                hooks=Path(kw["env"]["SCHEMATHESIS_HOOKS"]).read_text())
        har_path = Path(cmd[cmd.index("--report-har-path") + 1])
        _har(har_path, list(har))
        junit = Path(cmd[cmd.index("--report-junit-path") + 1])
        cases = "".join(f'<testcase name="op{i}"><failure message="{m}"/></testcase>'
                        for i, m in enumerate(failures))
        junit.write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
        return subprocess.CompletedProcess(cmd, returncode, stdout, "")

    monkeypatch.setattr(sp.subprocess, "run", fake_run)


def _run(**kw):
    return sp.run_schemathesis(BASE, "lp_secret_key_123", contract=Contract(BASE),
                               prepare=False, raise_unjudged=False, **kw)


def test_passed_only_when_every_write_operation_was_accepted(monkeypatch):
    _fake(monkeypatch, har=_all_ops_accepted())
    res = _run()
    assert res.verdict == sp.PASSED and res.ok and res.tally["approveContent"]["2xx"] == 1
    refused = ("PATCH", f"/v1/projects/{ids.PRJ_AUTO}/content-review-policy", 429, None)
    _fake(monkeypatch, har=[*_all_ops_accepted()[:-1], refused])
    res = _run()
    assert res.verdict == sp.INCONCLUSIVE and not res.ok
    assert any("updateReviewPolicy was never accepted" in r for r in res.reasons)
    with pytest.raises(sp.SchemaUnjudged) as info:
        sp.run_schemathesis(BASE, "k", contract=Contract(BASE), prepare=False)
    assert info.value.verdict == sp.INCONCLUSIVE and info.value.result.tally


def test_an_unintended_idempotency_conflict_is_inconclusive_and_tallied(monkeypatch):
    conflict = {"error": {"code": "IDEMPOTENCY_CONFLICT", "message": "m", "requestId": "r"}}
    again = ("POST", f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", 409, conflict)
    _fake(monkeypatch, har=[*_all_ops_accepted(), again])
    res = _run()
    assert res.tally["regenerateContent"]["409 IDEMPOTENCY_CONFLICT"] == 1
    assert res.verdict == sp.INCONCLUSIVE and "IDEMPOTENCY_CONFLICT" in res.message
    assert any("regenerateContent: 2xx x1, 409 IDEMPOTENCY_CONFLICT x1" in line
               for line in sp.tally_lines(res))


def test_schemathesis_warnings_are_carried_into_the_verdict(monkeypatch):
    out = ("=== WARNINGS ===\n\nRate limited: 5 operations mostly returned 429 Too Many "
           "Requests, leaving the logic behind them untested\n\n  - POST /v1/jobs/{jobId}/cancel"
           "\n\n💡 Send requests no faster\n\n=== SUMMARY ===\n")
    _fake(monkeypatch, stdout=out, har=_all_ops_accepted())
    res = _run()
    assert res.warnings == ["Rate limited: 5 operations mostly returned 429 Too Many Requests, "
                            "leaving the logic behind them untested (POST "
                            "/v1/jobs/{jobId}/cancel)"]
    assert res.verdict == sp.INCONCLUSIVE


def test_transport_trouble_is_never_a_failure(monkeypatch):
    _fake(monkeypatch, returncode=1, har=_all_ops_accepted(),
          failures=["Network Error: Connection refused"])
    res = _run()
    assert res.verdict == sp.INCONCLUSIVE and not res.ok  # the evidence is kept
    assert "stopped answering" in res.reasons[0]
    _fake(monkeypatch, returncode=1, har=_all_ops_accepted(),
          failures=["Network Error: Connection reset", "Response violates schema"])
    assert _run().verdict == sp.FAILED  # a real finding still fails
    _fake(monkeypatch, returncode=2, stdout="Error: invalid configuration")
    res = _run()
    assert res.verdict == sp.ERROR and "could not run" in res.reasons[0]

    def timeout(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, kw["timeout"])

    monkeypatch.setattr(sp.subprocess, "run", timeout)
    assert _run(timeout=5).verdict == sp.INCONCLUSIVE


def test_hooks_keys_dates_and_pins_reach_schemathesis(monkeypatch):
    seen: dict = {}
    _fake(monkeypatch, har=_all_ops_accepted(), seen=seen)
    sp.run_schemathesis(BASE, "lp_secret_key_123", contract=Contract(BASE), prepare=False,
                        raise_unjudged=False, project_id=ids.PRJ_AUTO, timeout=100)
    assert "lp_secret" not in seen["config"] and "lp_secret" not in seen["hooks"]
    assert "uuid.uuid4()" in seen["hooks"] and "scheduledFor" in seen["hooks"]
    assert seen["env"]["LAYERS_SCHEMA_FUTURE"] == sp.future_date()
    assert float(seen["env"]["LAYERS_SCHEMA_DEADLINE"]) > 0
    assert sp._operations({"approveContent": {"path.containerId": "cnt_x"}}) == (
        '\n[[operations]]\ninclude-operation-id = "approveContent"\n'
        'parameters = { "path.containerId" = "cnt_x" }\n')


@pytest.fixture(scope="module")
def accepts_invalid_generate():
    mock = bundled.start_mock("--stage-seconds", "0.05", "--broken", "generate_accepts_invalid",
                              module="tests.broken")
    yield mock
    mock.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_schema_fails_a_generate_that_accepts_variant_count_6(accepts_invalid_generate):
    url = accepts_invalid_generate.url
    target = bundled.target_for(url)
    res = sp.run_schemathesis(url, target.api_key, project_id=target.project_id,
                              contract=Contract(url), raise_unjudged=False, seed=1)
    assert res.verdict == sp.FAILED, res.message
    assert any("/v1/projects/{projectId}/content" in f for f in res.failures), res.failures
