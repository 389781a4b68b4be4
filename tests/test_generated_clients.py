"""Generated clients as a test: the proof that the contract is SDK-grade.

Two generators, pinned (openapi-python-client in the test extras, openapi-typescript and
openapi-fetch in package-lock.json), generate a client from openapi.yaml into a temporary
folder (generated code is never committed). A partner's program for each, kept in
tests/clients/, is type-checked strictly with the generated code and then runs the workflow
against the real mock: regenerate, a 409 narrowed to CONFLICT, the job, the container, a
first generation, and a 402 whose `details.cost` is read through the generated types (an
`int` in Python, a `number` in TypeScript, no cast).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import ROOT, require_command, require_npm_tool

CLIENTS = ROOT / "tests" / "clients"
SPEC = ROOT / "openapi.yaml"
BIN = Path(sys.executable).parent


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def _check_summary(summary: dict) -> None:
    """What both programs must have seen through their generated types."""
    assert summary["jobId"].startswith("job_")
    assert summary["conflictJobId"] == summary["jobId"]  # R10: the running job's id
    assert summary["jobStatus"] == "completed"
    assert summary["assetCount"] >= 1
    assert summary["generatedContainers"] == 2
    assert summary["billing"]["code"] == "BILLING_EXHAUSTED"
    assert summary["billing"]["cost"] == 120 and summary["billing"]["available"] == 0


# ---- openapi-python-client -------------------------------------------------------------------

@pytest.fixture(scope="module")
def python_client(tmp_path_factory) -> Path:
    """`layers_client`, generated from openapi.yaml (ruff on PATH: the generator formats)."""
    generator = BIN / "openapi-python-client"
    if not generator.exists():
        pytest.fail("openapi-python-client is missing: install the test extras")
    out = tmp_path_factory.mktemp("python-client")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = _run([str(generator), "generate", "--path", str(SPEC), "--meta", "none",
                   "--output-path", str(out / "layers_client"),
                   "--config", str(CLIENTS / "python" / "openapi-python-client.yaml")],
                  env=env, cwd=out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    shutil.copy(CLIENTS / "python" / "workflow.py", out / "workflow.py")
    return out


def test_python_client_passes_mypy_strict(python_client):
    result = _run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                   "layers_client", "workflow.py"], cwd=python_client)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_python_client_runs_the_workflow_and_reads_cost_as_int(python_client, live):
    result = _run([sys.executable, "workflow.py", live.url], cwd=python_client,
                  env={**os.environ, "PYTHONPATH": str(python_client)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    _check_summary(summary)
    assert summary["billing"]["costType"] == "int"


def test_python_client_types_the_402_details(python_client):
    """The generated model declares cost and available as int (not Any, not Unset)."""
    source = (python_client / "layers_client" / "models" / "billing_exhausted_details.py")
    text = source.read_text(encoding="utf-8")
    assert "    cost: int\n" in text and "    available: int\n" in text


# ---- openapi-typescript + openapi-fetch ------------------------------------------------------

TSC_FLAGS = ["--strict", "--target", "es2022", "--module", "nodenext",
             "--moduleResolution", "nodenext", "--lib", "es2022,dom"]


@pytest.fixture(scope="module")
def ts_project(live_mocks, tmp_path_factory) -> Path:
    """schema.d.ts from openapi-typescript (default flags), the program, its config."""
    generator = require_npm_tool("openapi-typescript")
    out = tmp_path_factory.mktemp("ts-client")
    result = _run([generator, str(SPEC), "--output", str(out / "schema.d.ts")])
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.copy(CLIENTS / "typescript" / "workflow.ts", out / "workflow.ts")
    (out / "config.ts").write_text(
        f"export const BASE_URL = {json.dumps(live_mocks('memory').url)};\n", encoding="utf-8")
    (out / "package.json").write_text('{"type": "module", "private": true}\n', encoding="utf-8")
    (out / "node_modules").symlink_to(ROOT / "node_modules")  # openapi-fetch, pinned
    return out


def test_typescript_program_compiles_with_tsc_strict(ts_project):
    """Also the proof of the probes: an unused @ts-expect-error (topic optional) fails tsc, and
    so does a body without variantCount or preserveAssets if a generator made them required."""
    tsc = require_npm_tool("tsc")
    result = _run([tsc, *TSC_FLAGS, "--noEmit", "workflow.ts", "config.ts"], cwd=ts_project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_typescript_program_runs_the_workflow_and_reads_cost_as_number(ts_project, live):
    tsc = require_npm_tool("tsc")
    node = require_command("node", "apt-get install nodejs")
    # The strict check is the test above; here only the JavaScript is written (fast).
    result = _run([tsc, *TSC_FLAGS, "--noCheck", "--outDir", "dist", "workflow.ts", "config.ts"],
                  cwd=ts_project)
    assert result.returncode == 0, result.stdout + result.stderr
    (ts_project / "dist" / "package.json").write_text('{"type": "module"}\n', encoding="utf-8")
    run = _run([node, "dist/workflow.js"], cwd=ts_project)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    _check_summary(summary)
    assert summary["billing"]["costType"] == "number"


def test_typescript_types_require_topic_and_type_cost(ts_project):
    """What the probe relies on, read in the generated file itself."""
    text = (ts_project / "schema.d.ts").read_text(encoding="utf-8")
    new_brief = text[text.index("        NewBrief: {"):]
    assert "topic: components" in new_brief[:new_brief.index("};")]
    details = text[text.index("        BillingExhaustedDetails: {"):]
    assert "cost: number;" in details[:details.index("};")]
    for schema, field in (("GenerateRequest", "variantCount"),
                          ("RegenerateRequest", "preserveAssets")):
        body = text[text.index(f"        {schema}: {{"):]
        assert f"{field}?: components" in body[:body.index("};")], (schema, field)


def test_typescript_types_every_5xx_of_every_operation(ts_project):
    """502, 503 and 504 are typed answers of every operation, in the error envelope."""
    text = (ts_project / "schema.d.ts").read_text(encoding="utf-8")
    operations = text[text.index("export interface operations {"):]
    for status in (500, 502, 503, 504):
        assert operations.count(f"            {status}: components[\"responses\"]") == 11, status
