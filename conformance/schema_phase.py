"""Schema conformance: Schemathesis with every phase and every built-in check (D10).

Run as the `schemathesis` CLI in a subprocess with a generated config, so the kit gets exactly
the behaviour users know from the CLI; failures are read back from its JUnit report.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from conformance.contract import spec_path

PROFILES = {
    "quick": {"phases": "examples,coverage,fuzzing", "max_examples": 5},
    "default": {"phases": "examples,coverage,fuzzing,stateful", "max_examples": 30},
}

# A run in which every call is a 401 would pass without this.
_CONFIG = """
[warnings]
fail-on = ["missing_auth"]
"""


@dataclass
class SchemaResult:
    ok: bool
    failures: list[str]
    summary: str
    command: list[str]


def run_schemathesis(base_url: str, api_key: str, *, profile: str = "default",
                     max_examples: int | None = None, seed: int | None = None,
                     timeout: float = 1800) -> SchemaResult:
    settings = PROFILES[profile]
    with tempfile.TemporaryDirectory(prefix="layers-conformance-") as tmp:
        config = Path(tmp) / "schemathesis.toml"
        config.write_text(_CONFIG, encoding="utf-8")
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               str(spec_path()), "--url", base_url.rstrip("/"),
               "-H", f"X-Api-Key: {api_key}", "--checks", "all",
               "--phases", settings["phases"],
               "--max-examples", str(max_examples or settings["max_examples"]),
               "--generation-database", "none", "--no-color",
               "--report", "junit", "--report-junit-path", str(junit)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return SchemaResult(False, [f"Schemathesis did not finish within {timeout:g} s"],
                                "", _masked(cmd, api_key))
        failures = _junit_failures(junit) if junit.exists() else []
        out = proc.stdout.replace(api_key, "[key]")
        if proc.returncode != 0 and not failures:
            failures = [out[-3000:] or proc.stderr[-3000:]]
        summary = out[out.rfind("SUMMARY"):][:2000] if "SUMMARY" in out else out[-2000:]
        return SchemaResult(proc.returncode == 0, failures, summary, _masked(cmd, api_key))


def _masked(cmd: list[str], key: str) -> list[str]:
    return [c.replace(key, key[:8] + "…") for c in cmd]


def _junit_failures(path: Path) -> list[str]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                text = (node.get("message") or "") + "\n" + (node.text or "")
                out.append(f"{case.get('name')}: {text.strip()[:1500]}")
    return out
