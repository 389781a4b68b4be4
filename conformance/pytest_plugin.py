"""pytest plugin (entry point `pytest11`): the kit's checks inside a team's own test run."""

from __future__ import annotations


def pytest_addoption(parser) -> None:
    group = parser.getgroup("layers", "Layers conformance kit")
    group.addoption("--layers-base-url", help="base URL of the implementation to check")
