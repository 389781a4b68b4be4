"""Lint gates of the contract (D12): Spectral and Redocly, both at 0 errors and 0 warnings.

The rulesets are files of the repository: `.spectral.yaml` (spectral:oas plus our rules, whose
functions are in lint/spectral-functions/) and `redocly.yaml` (Redocly's `recommended`). The
tools are the pinned npm ones (package-lock.json). Each gate is also shown to catch a breach,
so that a ruleset that silently stopped loading cannot pass.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.tools import ROOT, require_npm_tool

SPEC = ROOT / "openapi.yaml"


def spectral(path: Path) -> list[dict]:
    """Spectral's findings on a document, with the repository's ruleset."""
    tool = require_npm_tool("spectral")
    out = subprocess.run([tool, "lint", str(path), "--ruleset", str(ROOT / ".spectral.yaml"),
                          "--format", "json", "--fail-severity", "hint", "--quiet"],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.stdout.strip().startswith("["), out.stdout + out.stderr
    return json.loads(out.stdout)


def redocly(path: Path) -> dict:
    """Redocly's totals and problems on a document, with the repository's redocly.yaml."""
    tool = require_npm_tool("redocly")
    out = subprocess.run([tool, "lint", str(path), "--config", str(ROOT / "redocly.yaml"),
                          "--format", "json"],
                         capture_output=True, text=True, timeout=180, cwd=ROOT)
    start = out.stdout.find("{")
    assert start >= 0, out.stdout + out.stderr
    return json.loads(out.stdout[start:])


def test_spectral_reports_nothing():
    findings = spectral(SPEC)
    assert findings == [], "\n".join(f"{f['code']}: {f['message']} at {f['path']}"
                                     for f in findings)


def test_redocly_recommended_reports_nothing():
    report = redocly(SPEC)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, [
        f"{p['ruleId']}: {p['message']}" for p in report["problems"]]


@pytest.fixture(scope="module")
def broken_spec(tmp_path_factory) -> Path:
    """The contract with one breach of each of our rules."""
    doc = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    get_job = doc["paths"]["/v1/jobs/{jobId}"]["get"]
    get_job["x-codeSamples"] = get_job["x-codeSamples"][:2]           # no Python sample
    get_job["description"] = "Returns a job."                           # no scope sentence
    del doc["paths"]["/v1/jobs/{jobId}/cancel"]["post"]["x-required-scopes"]
    doc["components"]["schemas"]["WriteConflictError"]["discriminator"]["mapping"].pop("CONFLICT")
    media = doc["components"]["responses"]["BillingExhausted"]["content"]["application/json"]
    media["example"]["error"]["details"]["cost"] = "a lot"             # invalid example
    doc["components"]["responses"]["Internal"]["content"]["application/json"]["schema"] = {
        "type": "object"}                                               # not the error union
    path = tmp_path_factory.mktemp("lint") / "broken.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_spectral_catches_each_breach_of_our_rules(broken_spec):
    codes = {f["code"] for f in spectral(broken_spec) if f["severity"] == 0}
    assert {"layers-code-samples", "layers-scope-sentence", "layers-required-scopes",
            "layers-error-union", "oas3-valid-media-example"} <= codes


def test_redocly_catches_an_invalid_example(broken_spec):
    report = redocly(broken_spec)
    assert "no-invalid-media-type-examples" in {p["ruleId"] for p in report["problems"]}
