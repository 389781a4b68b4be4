"""pytest plugin (entry point `pytest11`): the kit's checks as items of a team's own test run.

    pytest --layers-base-url https://staging.example --layers-api-key $KEY \\
           --layers-project-id prj_... [--layers-readonly-key ...]
    pytest --layers-mock          # the bundled mock, all inputs filled in

Each check becomes an item `layers::<rule>::<check>`; a check whose input was not given is
skipped with the option that would run it. Without a `--layers-*` target nothing is added.
The `layers_target` fixture gives the Target to a team's own tests.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from conformance.contract import Contract
from conformance.registry import Check
from conformance.runner import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    NOT_RUN,
    WAIVED,
    preflight,
    run_check,
    select,
)
from conformance.target import Target

_SKIP = {"base_url", "container_ids", "job_timeout", "poll_interval", "request_timeout"}
_FIELDS = [f.name for f in dataclasses.fields(Target) if f.name not in _SKIP]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("layers", "Layers conformance kit")
    group.addoption("--layers-base-url", help="base URL of the implementation to check")
    group.addoption("--layers-mock", action="store_true",
                    help="start the bundled mock and check it")
    for name in _FIELDS:
        group.addoption(f"--layers-{name.replace('_', '-')}", help=f"the kit's --{name}")
    group.addoption("--layers-container-id", action="append", default=[],
                    help="an existing completed container (repeatable)")
    group.addoption("--layers-only", action="append", help="only these rule ids")
    group.addoption("--layers-job-timeout", type=float, default=300.0)


class LayersFailure(Exception):
    pass


class CheckItem(pytest.Item):
    def __init__(self, *, check: Check, **kw) -> None:
        super().__init__(**kw)
        self.check = check
        self.add_marker(pytest.mark.layers)

    def runtest(self) -> None:
        state = self.session.config.stash[_STATE]
        outcome = run_check(self.check, state["target"], state["contract"], state["rotation"],
                            observations=state["observations"], problems=state["problems"])
        # failed -> fail; not run, inconclusive, waived -> skip with the reason; error -> error
        if outcome.status in (NOT_RUN, INCONCLUSIVE, WAIVED):
            pytest.skip(f"{outcome.rule}: {outcome.status}: {outcome.message}")
        if outcome.status == ERROR:
            raise RuntimeError(f"the kit failed (not the target): {outcome.message}\n"
                               f"{outcome.traceback or ''}")
        if outcome.status == FAILED:
            lines = [f"{outcome.rule} {outcome.title}", outcome.message]
            if outcome.expected:
                lines.append(f"expected: {outcome.expected}")
            if outcome.received:
                lines.append(f"received: {outcome.received}")
            raise LayersFailure("\n".join(lines))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, LayersFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return "layers", None, f"layers::{self.check.rule}::{self.check.name}"


_STATE = pytest.StashKey[dict]()


def _target(config: pytest.Config, base_url: str) -> Target:
    values = {name: config.getoption(f"--layers-{name.replace('_', '-')}") for name in _FIELDS}
    values = {k: v for k, v in values.items() if v}
    return Target(base_url=base_url, container_ids=tuple(config.getoption(
        "--layers-container-id")), job_timeout=config.getoption("--layers-job-timeout"),
        **values)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "layers: a check of the Layers conformance kit")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    base_url = config.getoption("--layers-base-url")
    if not base_url and not config.getoption("--layers-mock"):
        return
    state: dict = {}
    if config.getoption("--layers-mock"):
        from conformance import bundled

        mock = bundled.start_mock(*bundled.MOCK_ARGS)
        config.add_cleanup(mock.stop)
        given = {name: config.getoption(f"--layers-{name.replace('_', '-')}")
                 for name in _FIELDS}
        given = {k: v for k, v in given.items() if v}
        state["target"] = bundled.target_for(mock.url, **given)
    else:
        if not config.getoption("--layers-api-key"):
            raise pytest.UsageError("--layers-base-url needs --layers-api-key")
        state["target"] = _target(config, base_url)
    state["contract"] = Contract(state["target"].base_url)
    state["problems"] = preflight(state["target"], state["contract"]).problems
    from conformance.observations import Observations

    state["observations"] = Observations()
    ids = state["target"].container_ids
    state["rotation"] = itertools.cycle(ids) if ids else iter(())
    config.stash[_STATE] = state
    for c in select(config.getoption("--layers-only")):
        items.append(CheckItem.from_parent(session, name=f"layers::{c.rule}::{c.name}",
                                           check=c))


@pytest.fixture
def layers_target(request: pytest.FixtureRequest) -> Target:
    """The Target the `--layers-*` options describe (for a team's own checks)."""
    state = request.config.stash.get(_STATE, None)
    if state is None:
        pytest.skip("no --layers-base-url or --layers-mock given")
    return state["target"]
