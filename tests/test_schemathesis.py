"""`schemathesis run`, all phases and all checks, against the real mock process (SCHEMA).

Sized to keep the suite fast (a fixed seed, 25 examples per operation); the long run is
`make fuzz`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from layers_kit.contract import spec
from tests.support.process import start_mock

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def fast_mock():
    mp = start_mock("--stage-seconds", "0.05", "--validate-responses")
    yield mp
    mp.stop()


def schemathesis(url: str, key: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
           str(spec.spec_path()), "--url", url, "-H", f"X-Api-Key: {key}", "--checks", "all",
           "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "25",
           "--seed", "1", "--generation-database", "none", "--no-color", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400)


def test_schemathesis_all_phases_all_checks_pass(fast_mock):
    result = schemathesis(fast_mock.url, "lp_test_full")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout and "Coverage" in result.stdout


def test_schemathesis_run_with_a_bad_key_fails(fast_mock):
    result = schemathesis(fast_mock.url, "lp_test_wrong", "--phases", "examples")
    assert result.returncode != 0, result.stdout[-3000:]
