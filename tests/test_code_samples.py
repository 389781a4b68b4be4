"""Every x-codeSamples sample of openapi.yaml, run against the real mock process: what
partners copy must work.

The samples are written for `http://127.0.0.1:4010` with the test keys and the fixtures' ids.
Here they run unmodified but for the base URL (the mock listens on a free port) and for the
ids the mock makes when it loads its fixtures (a job, an asset, a scheduled post), which the
samples show as example ids: both are plain string substitutions. curl runs in bash, the
TypeScript samples are compiled with the pinned `tsc --strict` and run with node, the Python
samples run with this interpreter (httpx is a dependency). Each must answer the operation's
success status with a body that validates against the operation's response schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from layers_kit.contract import operations, spec
from tests.support import ids
from tests.support.tools import require_command, require_npm_tool

DOC = spec.load_spec()
OPS = {op.operation_id: {"method": op.method, "path": op.path, "operation": op.node}
       for op in operations.table()}
BASE = "http://127.0.0.1:4010"
EXAMPLE_JOB = "job_01HXZ9G7KMV2QX8Y1S5RJW3B7T"
EXAMPLE_ASSET = "ast_01HXZB0C1D2E3F4G5H6J7K8M9N"
EXAMPLE_POST = "sp_2a1b0c9d-8e7f-4a6b-9c5d-4e3f2a1b0c9d"

# What each sample must show beyond status and schema: the fixture it acted on.
CHECKS: dict[str, Any] = {
    "regenerateContent": lambda b, r: b["containerId"] == ids.CNT_NOT_REQUIRED
    and b["kind"] == "content_regenerate",
    "getContent": lambda b, r: b["id"] == ids.CNT_NOT_REQUIRED,
    "getContentAsset": lambda b, r: b["assetId"] == r[EXAMPLE_ASSET],
    "generateContent": lambda b, r: b["kind"] == "content_generate"
    and len(b["containerIds"]) == 2 and b["projectId"] == ids.PRJ_AUTO,
    "approveContent": lambda b, r: b["id"] == ids.CNT_PENDING
    and b["approvalStatus"] == "approved",
    "scheduleContent": lambda b, r: b["containerId"] == ids.CNT_NOT_REQUIRED
    and b["scheduledFor"] == "2030-06-01T17:00:00.000Z",
    "getScheduledPost": lambda b, r: b["id"] == r[EXAMPLE_POST],
    "getJob": lambda b, r: b["jobId"] == r[EXAMPLE_JOB] and b["status"] == "running",
    "cancelJob": lambda b, r: b == {"jobId": r[EXAMPLE_JOB], "accepted": True},
    "getReviewPolicy": lambda b, r: b["projectId"] == ids.PRJ_REVIEW_ALL
    and b["policy"] == "review_all",
    "updateReviewPolicy": lambda b, r: b["policy"] == "review_first_n" and b["firstN"] == 5,
}
LANGS = {"curl": "Shell", "ts": "TypeScript", "python": "Python"}


def sample(op_id: str, lang: str) -> str:
    wanted = LANGS[lang]
    return next(s["source"] for s in OPS[op_id]["operation"]["x-codeSamples"]
                if s["lang"] == wanted)


def success_status(op_id: str) -> int:
    """The status the sample must see: cancelJob's sample cancels a running job (202)."""
    if op_id == "cancelJob":
        return 202
    return min(int(s) for s in OPS[op_id]["operation"]["responses"] if s.startswith("2"))


def real_ids(mp) -> dict[str, str]:
    """The example ids of the samples -> the ids the running mock made for its fixtures."""
    with mp.client() as c:
        container = c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}").json()
        scheduled = c.get(f"/v1/content/{ids.CNT_APPROVED_SCHEDULED}").json()
        running = c.get(f"/v1/content/{ids.CNT_RUNNING}").json()
    return {EXAMPLE_ASSET: container["assets"][0]["assetId"],
            EXAMPLE_POST: scheduled["scheduledPostIds"][0],
            EXAMPLE_JOB: running["currentJobId"]}


def substitute(source: str, url: str, replacements: dict[str, str]) -> str:
    source = source.replace(BASE, url)
    for example, real in replacements.items():
        source = source.replace(example, real)
    return source


def check(op_id: str, status: int, body_text: str, replacements: dict[str, str]) -> None:
    assert status == success_status(op_id), body_text
    body = json.loads(body_text)
    media = spec.resolve(OPS[op_id]["operation"]["responses"][str(status)])
    schema = media["content"]["application/json"]["schema"]
    validator = OAS30Validator({**schema, "components": DOC["components"]})
    assert not [e.message for e in validator.iter_errors(body)], body
    assert CHECKS[op_id](body, replacements), body


def test_every_operation_has_a_check():
    assert set(CHECKS) == set(OPS)


@pytest.fixture(scope="module")
def compiled_ts(live_mocks, tmp_path_factory) -> Path:
    """Every TypeScript sample compiled once with `tsc --strict` (DOM lib: fetch, crypto)."""
    tsc = require_npm_tool("tsc")
    src = tmp_path_factory.mktemp("samples-ts")
    for op_id in OPS:
        (src / f"{op_id}.ts").write_text("export {};\n" + sample(op_id, "ts"), encoding="utf-8")
    out = src / "out"
    result = subprocess.run(
        [tsc, "--strict", "--target", "es2022", "--module", "es2022", "--lib", "es2022,dom",
         "--outDir", str(out), *sorted(str(p) for p in src.glob("*.ts"))],
        capture_output=True, text=True, timeout=300, cwd=src)  # no @types from the repo
    assert result.returncode == 0, result.stdout + result.stderr
    (out / "package.json").write_text('{"type": "module"}', encoding="utf-8")
    return out


def _status_and_body(stdout: str) -> tuple[int, str]:
    status, body = stdout.strip().split(" ", 1)
    return int(status), body


@pytest.mark.parametrize("op_id", list(OPS))
def test_curl_sample(live, op_id):
    require_command("curl")
    replacements = real_ids(live)
    cmd = substitute(sample(op_id, "curl"), live.url, replacements)
    cmd = cmd.replace("curl ", "curl -sS -w '\\n%{http_code}' ", 1)
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    body, status = out.stdout.rsplit("\n", 1)
    check(op_id, int(status), body, replacements)


@pytest.mark.parametrize("op_id", list(OPS))
def test_typescript_sample(live, compiled_ts, op_id, tmp_path):
    node = require_command("node", "apt-get install nodejs")
    replacements = real_ids(live)
    js = substitute((compiled_ts / f"{op_id}.js").read_text(encoding="utf-8"), live.url,
                    replacements)
    script = tmp_path / f"{op_id}.mjs"
    script.write_text(js, encoding="utf-8")
    out = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    check(op_id, *_status_and_body(out.stdout), replacements)


@pytest.mark.parametrize("op_id", list(OPS))
def test_python_sample(live, op_id, tmp_path):
    replacements = real_ids(live)
    script = tmp_path / f"{op_id}.py"
    script.write_text(substitute(sample(op_id, "python"), live.url, replacements),
                      encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr
    check(op_id, *_status_and_body(out.stdout), replacements)
