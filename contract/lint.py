"""`layers-contract lint`: the contract's lint gates, Spectral and Redocly, at 0 errors 0 warnings.

The rulesets are the project's `.spectral.yaml` and `redocly.yaml` (looked for beside the
contract, then in the working directory); without them each tool runs its defaults
(`spectral:oas`, Redocly's `recommended`). The tools are the pinned npm ones (`npm ci`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_BIN = Path(__file__).resolve().parent.parent / "node_modules" / ".bin"


@dataclass
class LintResult:
    tool: str
    errors: int
    warnings: int
    output: str
    ruleset: str

    @property
    def clean(self) -> bool:
        return self.errors == 0 and self.warnings == 0


class ToolMissing(RuntimeError):
    pass


def _tool(name: str) -> str:
    local = _BIN / name
    if local.exists() and shutil.which("node"):
        return str(local)
    found = shutil.which(name)
    if not found:
        raise ToolMissing(f"{name} is not installed: run `npm ci` in the project's checkout")
    return found


def _config(spec_file: Path, name: str) -> Path | None:
    for folder in (spec_file.resolve().parent, Path.cwd()):
        if (folder / name).is_file():
            return folder / name
    return None


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)


def spectral(spec_file: Path) -> LintResult:
    ruleset = _config(spec_file, ".spectral.yaml")
    with tempfile.TemporaryDirectory(prefix="layers-lint-") as tmp:
        if ruleset is None:
            default = Path(tmp) / ".spectral.yaml"
            default.write_text('extends: ["spectral:oas"]\n')
        done = _run([_tool("spectral"), "lint", str(spec_file), "--ruleset",
                     str(ruleset or default), "--format", "json", "--quiet"])
    try:
        findings = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise ToolMissing(f"spectral failed: {(done.stderr or done.stdout)[-800:]}") from None
    errors = sum(1 for f in findings if f.get("severity") == 0)
    warnings = sum(1 for f in findings if f.get("severity") == 1)
    text = "\n".join(f"  {'error' if f.get('severity') == 0 else 'warning'} {f.get('code')} "
                     f"{'.'.join(map(str, f.get('path', [])))}: {f.get('message')}"
                     for f in findings if f.get("severity") in (0, 1))
    return LintResult("spectral", errors, warnings, text,
                      str(ruleset) if ruleset else "spectral:oas (default)")


def redocly(spec_file: Path) -> LintResult:
    config = _config(spec_file, "redocly.yaml")
    cmd = [_tool("redocly"), "lint", str(spec_file), "--format", "json"]
    if config:
        cmd += ["--config", str(config)]
    done = _run(cmd)
    start = done.stdout.find("{")
    try:
        data = json.loads(done.stdout[start:]) if start >= 0 else {}
        totals = data["totals"]
    except (json.JSONDecodeError, KeyError):
        raise ToolMissing(f"redocly failed: {(done.stderr or done.stdout)[-800:]}") from None
    text = "\n".join(f"  {p.get('severity')} {p.get('ruleId')}: {p.get('message')}"
                     for p in data.get("problems", []) if p.get("severity") in ("error", "warn"))
    return LintResult("redocly", totals.get("errors", 0), totals.get("warnings", 0), text,
                      str(config) if config else "recommended (default)")


def lint(spec_file: Path) -> list[LintResult]:
    return [spectral(spec_file), redocly(spec_file)]
