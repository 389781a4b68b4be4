"""The CI recipes run as written: the shell steps of `action.yml` (GitHub Actions) and the script
of `ci-templates/layers-conformance.gitlab-ci.yml` (GitLab CI), executed by bash against the
real mock, with the keys in the environment as the CI's secrets put them there.

What a CI runner would do and a test cannot (download the kit from PyPI, upload artifacts) is
left to the runner: the install step runs with `install` set to `true` (the kit is already on
PATH, from this checkout's venv), and the artifact steps are checked by reading them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import ids
from tests.support.process import start_mock

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)
SECRETS = {"LAYERS_API_KEY": ids.FULL, "LAYERS_READONLY_KEY": ids.READONLY}
# A run that stays short: one rule, no Schemathesis phase.
FAST = "--only R1 --only R12 --no-schemathesis"


@pytest.fixture(scope="module")
def mock():
    m = start_mock("--stage-seconds", "0.05")
    yield m
    assert m.stop() == 0, "".join(m.output)


def _env(extra: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAYERS_")}
    return {**clean, "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}", **SECRETS, **extra}


def _github_steps(inputs: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The action's bash steps with `${{ inputs.x }}` filled in as the runner fills them."""
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    values = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    values.update(inputs)

    def fill(text: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], text)

    steps = []
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            steps.append((fill(step["run"]), {k: fill(str(v))
                                              for k, v in (step.get("env") or {}).items()}))
        else:  # the artifact upload: kept even when the run fails, the reports' folder
            assert step["uses"].startswith("actions/upload-artifact@")
            assert step["if"] == "always()" and fill(step["with"]["path"]) == \
                values["reports-dir"]
    return steps


@pytest.mark.parametrize("fail_on, expected", [("failed,error", 0), ("failed,not-run", 2)])
def test_the_github_action_runs_the_kit_and_keeps_its_reports(mock, tmp_path, fail_on,
                                                             expected):
    inputs = {"base-url": mock.url, "project-id": ids.PRJ_AUTO, "install": "true",
              "extra-args": FAST, "fail-on": fail_on}
    code = 0
    for script, env in _github_steps(inputs):
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=_env(env),
                              capture_output=True, text=True, timeout=600)
        code = done.returncode
        if code:
            break
    assert code == expected, done.stdout[-3000:] + done.stderr[-3000:]
    reports = tmp_path / "conformance-reports"
    assert (reports / "conformance.xml").is_file() and (reports / "conformance.html").is_file()
    data = json.loads((reports / "conformance.json").read_text())
    assert data["exitCode"] == expected and data["failOn"] == fail_on.split(",")
    assert ids.FULL not in (reports / "conformance.html").read_text()  # the key stays masked
    if expected:
        assert "--other-org-key" in done.stdout  # what would have run the skipped checks


def test_the_gitlab_template_runs_the_kit_and_keeps_its_reports(mock, tmp_path):
    template = yaml.safe_load(
        (ROOT / "ci-templates" / "layers-conformance.gitlab-ci.yml").read_text(encoding="utf-8"))
    job = template[".layers-conformance"]
    variables = {**job["variables"], "LAYERS_KIT_INSTALL": "true", "LAYERS_EXTRA_ARGS": FAST,
                 "LAYERS_BASE_URL": mock.url, "LAYERS_PROJECT_ID": ids.PRJ_AUTO}
    for line in job["script"]:  # GitLab runs each line in one shell, stopping at a failure
        done = subprocess.run(["bash", "-e", "-c", line], cwd=tmp_path, env=_env(variables),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, line + done.stdout[-3000:] + done.stderr[-3000:]
    reports = tmp_path / variables["LAYERS_REPORTS_DIR"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == f"{reports.name}/conformance.xml"
    assert (reports / "conformance.xml").is_file()
    assert json.loads((reports / "conformance.json").read_text())["exitCode"] == 0
