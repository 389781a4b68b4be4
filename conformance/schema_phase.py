"""Schema conformance: Schemathesis with its phases and every built-in check (D10).

Run as the `schemathesis` CLI in a subprocess, so the kit gets exactly the behaviour users know
from the CLI. Keys never reach its command line (where `ps` shows them): the generated config
reads them from the subprocess's environment, and the config sits in a private (0700) temporary
folder as a 0600 file. Schemathesis runs in that folder, so no `.hypothesis/` or
`.schemathesis/` is left in the caller's working folder. Its JUnit report and its HAR (keys
masked) are kept next to the kit's reports when there are any; failures, the statuses it saw
per operation and what it spent are read back from them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from layers_kit.conformance.contract import Contract, spec_path
from layers_kit.conformance.observations import Spend, spend_of
from layers_kit.conformance.secrets import mask
from layers_kit.contract import spec

PROFILES = {
    "quick": {"phases": "fuzzing", "max_examples": 5},
    "default": {"phases": "examples,coverage,fuzzing,stateful", "max_examples": 10},
}
KEY_ENV = "LAYERS_CONFORMANCE_API_KEY"

# A run in which every call is a 401 would pass without `missing_auth`.
_CONFIG = """
headers = {{ "X-Api-Key" = "${{{env}}}" }}

[warnings]
fail-on = ["missing_auth"]
{parameters}
"""


@dataclass
class SchemaResult:
    ok: bool
    failures: list[str]
    summary: str
    command: list[str]
    junit: Path | None = None
    har: Path | None = None
    reproduce: list[str] = field(default_factory=list)
    coverage: Counter = field(default_factory=Counter)
    spend: Spend = field(default_factory=Spend)


def _parameters(contract: Contract | None, project_id: str | None,
                container_id: str | None) -> str:
    """Pin the path parameters the spec names for a project and a container to real ids."""
    if contract is None:
        return ""
    doc = contract.doc

    def name(param: dict) -> str | None:
        param = spec.resolve(param, doc)
        return param.get("name") if isinstance(param, dict) else None

    names = set()
    for item in (doc.get("paths") or {}).values():
        params = list(item.get("parameters") or [])
        for op in item.values():
            if isinstance(op, dict):
                params += op.get("parameters") or []
        names |= {name(p) for p in params}
    pins = {}
    if project_id and "projectId" in names:
        pins["path.projectId"] = project_id
    if container_id and "containerId" in names:
        pins["path.containerId"] = container_id
    if not pins:
        return ""
    return "\n[parameters]\n" + "".join(f'"{k}" = {json.dumps(v)}\n' for k, v in pins.items())


def run_schemathesis(base_url: str, api_key: str, *, profile: str = "default",
                     max_examples: int | None = None, seed: int | None = None,
                     timeout: float = 1800, report_dir: Path | None = None,
                     project_id: str | None = None, container_id: str | None = None,
                     exclude_checks: list[str] = (),
                     contract: Contract | None = None) -> SchemaResult:
    settings = PROFILES[profile]
    with tempfile.TemporaryDirectory(prefix="layers-conformance-") as tmp:
        work = Path(tmp)
        config = work / "schemathesis.toml"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_CONFIG.format(env=KEY_ENV,
                                   parameters=_parameters(contract, project_id, container_id)))
        out_dir = Path(report_dir).resolve() if report_dir else work
        out_dir.mkdir(parents=True, exist_ok=True)
        junit, har = out_dir / "schemathesis-junit.xml", out_dir / "schemathesis.har"
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               str(spec_path()), "--url", base_url.rstrip("/"), "--checks", "all",
               "--phases", settings["phases"],
               "--max-examples", str(max_examples or settings["max_examples"]),
               "--generation-database", "none", "--no-color",
               "--report", "junit,har", "--report-junit-path", str(junit),
               "--report-har-path", str(har)]
        if exclude_checks:
            cmd += ["--exclude-checks", ",".join(exclude_checks)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        env = {**os.environ, KEY_ENV: api_key}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  cwd=work, env=env)
        except subprocess.TimeoutExpired:
            return SchemaResult(False, [f"Schemathesis did not finish within {timeout:g} s"],
                                "", cmd)
        for path in (junit, har):
            _mask_file(path, api_key)
        failures = _junit_failures(junit) if junit.exists() else []
        out = _mask(proc.stdout, api_key)
        if proc.returncode != 0 and not failures:
            failures = [out[-3000:] or _mask(proc.stderr, api_key)[-3000:]]
        summary = out[out.rfind("SUMMARY"):][:2000] if "SUMMARY" in out else out[-2000:]
        coverage, spend = _har_facts(har, contract)
        kept = report_dir is not None
        return SchemaResult(proc.returncode == 0, failures, summary, cmd,
                            junit if kept and junit.exists() else None,
                            har if kept and har.exists() else None,
                            _reproductions(out), coverage, spend)


def command_line(result: SchemaResult) -> str:
    """The command as run (no key in it: the key travels in the environment)."""
    return " ".join(shlex.quote(c) for c in result.command)


def _mask(text: str, key: str) -> str:
    return text.replace(key, mask(key)) if key else text


def _mask_file(path: Path, key: str) -> None:
    if key and path.exists():
        text = path.read_text(encoding="utf-8", errors="replace")
        if key in text:
            path.write_text(_mask(text, key), encoding="utf-8")


def _reproductions(out: str) -> list[str]:
    """The `curl` reproduction commands Schemathesis prints for each failure."""
    lines = out.splitlines()
    found = []
    for i, line in enumerate(lines):
        if "Reproduce with" in line:
            cmd = []
            for nxt in lines[i + 1:]:
                if not nxt.strip():
                    if cmd:
                        break
                    continue
                cmd.append(nxt.strip())
                if not nxt.rstrip().endswith("\\"):
                    break
            if cmd:
                found.append("\n".join(cmd))
    return found[:20]


def _har_facts(har: Path, contract: Contract | None) -> tuple[Counter, Spend]:
    coverage: Counter = Counter()
    spend = Spend()
    if contract is None or not har.exists():
        return coverage, spend
    try:
        entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    except (ValueError, KeyError, TypeError):
        return coverage, spend
    for e in entries:
        req, res = e.get("request") or {}, e.get("response") or {}
        method, url, status = req.get("method", ""), req.get("url", ""), res.get("status")
        op = contract.operation_for(method, url)
        if op is None or not isinstance(status, int) or status == 0:
            continue
        coverage[(op, status)] += 1
        headers = {h.get("name", "").lower(): h.get("value") for h in res.get("headers") or []}
        spend.add(spend_of(op, method, status, (req.get("postData") or {}).get("text"),
                           (res.get("content") or {}).get("text"),
                           headers.get("idempotent-replayed") == "true", "schemathesis"))
    return coverage, spend


def _junit_failures(path: Path) -> list[str]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                text = (node.get("message") or "") + "\n" + (node.text or "")
                out.append(f"{case.get('name')}: {text.strip()[:1500]}")
    return out
