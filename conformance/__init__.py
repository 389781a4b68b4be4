"""Conformance kit: checks any running implementation against openapi.yaml and the rules
R1-R12 and D5-D8 (contract/catalogue.py).

    from layers_kit.conformance import Target, run
    result = run(Target(base_url="https://...", api_key="...", project_id="prj_..."))
    assert result.exit_code == 0

Names load lazily: the pytest plugin lives in this package, and an unrelated project's test
session must not pay for openapi-core, httpx or Schemathesis (tests/test_install.py).
"""

from importlib import import_module

_HOME = {
    "NotRunnable": "failures", "Violation": "failures",
    "Check": "registry", "all_checks": "registry", "check": "registry",
    "Outcome": "runner", "RunResult": "runner", "run": "runner",
    "Target": "target",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(name)
