"""The reference page's curl, fetch and httpx snippets, run unmodified but for the base URL.

The page is not ours to copy into the project: these tests run when it sits beside the
project (`../shared/reference/`, as on our machines and in our CI) and are skipped, with the
reason, on any other clone. The project's own code samples are tested elsewhere, always.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import ids
from tests.support.tools import require_command

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "regenerate-content.txt"
PROD = "https://api.layers.com"


def snippet(start: str, end: str) -> str:
    text = REFERENCE.read_text(encoding="utf-8")
    begin = text.index(start)
    stop = text.index(end, begin)
    return text[begin:stop].strip()


@pytest.fixture(scope="module")
def reference() -> Path:
    if not REFERENCE.exists():
        pytest.skip(f"the reference page is not beside the project ({REFERENCE}); its "
                    "snippets are tested only where it is")
    return REFERENCE


def check_accepted(body: dict) -> None:
    assert body["kind"] == "content_regenerate" and body["status"] == "running"
    assert body["containerId"] == ids.CNT_NOT_REQUIRED
    assert body["locationUrl"] == f"/v1/jobs/{body['jobId']}"


def test_curl_snippet(live, reference):
    import json

    require_command("curl")
    cmd = snippet("curl -X POST", "regenerate-content.ts")
    cmd = cmd.replace(PROD, live.url).replace("{containerId}", ids.CNT_NOT_REQUIRED)
    cmd = cmd.replace("curl -X POST", "curl -sS -w '\\n%{http_code}' -X POST", 1)
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "LAYERS_API_KEY": ids.FULL}, check=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "202"
    check_accepted(json.loads(body))


def test_fetch_snippet_with_node(live, reference, tmp_path):
    node = require_command("node", "apt-get install nodejs")
    code = snippet("const res = await fetch(", "regenerate_content.py")
    code = code.replace(PROD, live.url).replace("process.env.LAYERS_API_KEY!",
                                                "process.env.LAYERS_API_KEY")  # TS -> JS only
    script = tmp_path / "snippet.mjs"
    script.write_text(textwrap.dedent(f"""
        import crypto from 'node:crypto';
        const containerId = '{ids.CNT_NOT_REQUIRED}';
        {code}
        console.log(JSON.stringify({{status: res.status, jobId, id}}));
    """), encoding="utf-8")
    out = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "LAYERS_API_KEY": ids.FULL})
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads(out.stdout)
    assert result["status"] == 202 and result["id"] == ids.CNT_NOT_REQUIRED
    assert re.match(r"^job_[0-9A-HJKMNP-TV-Z]{26}$", result["jobId"])


def test_httpx_snippet(live, reference, tmp_path):
    code = snippet("import os, uuid, httpx", "Responses")
    code = code.replace(PROD, live.url)
    script = tmp_path / "snippet.py"
    script.write_text(f"container_id = {ids.CNT_NOT_REQUIRED!r}\n{code}\n"
                      "import json; print(r.status_code); print(json.dumps(job))\n",
                      encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "LAYERS_API_KEY": ids.FULL})
    assert out.returncode == 0, out.stderr
    status, body = out.stdout.strip().split("\n", 1)
    import json

    assert status == "202"
    check_accepted(json.loads(body))
