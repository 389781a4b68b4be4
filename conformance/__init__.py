"""Conformance kit: checks any running implementation against openapi.yaml and DESIGN D4-D8.

    from conformance import Target, run
    result = run(Target(base_url="https://...", api_key="...", project_id="prj_..."))
    assert result.exit_code == 0

Names load lazily: the pytest plugin lives in this package, and an unrelated project's test
session must not pay for openapi-core, httpx or Schemathesis (tests/test_install.py).
"""

from importlib import import_module

_HOME = {
    "NotRunnable": "conformance.failures", "Violation": "conformance.failures",
    "Check": "conformance.registry", "all_checks": "conformance.registry",
    "check": "conformance.registry",
    "Outcome": "conformance.runner", "RunResult": "conformance.runner", "run": "conformance.runner",
    "Target": "conformance.target",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(name)
