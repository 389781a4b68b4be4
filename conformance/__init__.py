"""Conformance kit: checks any running implementation against openapi.yaml and DESIGN D4-D8.

    from conformance import Target, run
    result = run(Target(base_url="https://...", api_key="...", project_id="prj_..."))
    assert result.exit_code == 0
"""

from conformance.failures import NotRunnable, Violation
from conformance.registry import Check, all_checks, check
from conformance.runner import Outcome, RunResult, run
from conformance.target import Target

__all__ = ["Check", "NotRunnable", "Outcome", "RunResult", "Target", "Violation",
           "all_checks", "check", "run"]
