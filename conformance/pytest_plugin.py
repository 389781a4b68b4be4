"""pytest plugin (entry point `pytest11`): the kit's checks as items of a team's own test run.

    pytest --layers-base-url https://staging.example --layers-api-key $KEY \\
           --layers-project-id prj_... [--layers-readonly-key ...]
    pytest --layers-mock          # the bundled mock, all inputs filled in

The options are the kit's (options.py: one model, every default written once): each
`layers-conformance run` option that makes sense here is `--layers-` and its name, and the keys
may come from the same environment variables (LAYERS_API_KEY, LAYERS_READONLY_KEY, ...).

Each check becomes an item `layers::<rule>::<check>`: `failed` fails, `error` (the kit's own
failure) errors, and `not run` (with the option that would run it), `inconclusive` (with what it
needed) and `waived` skip with the reason. Without a `--layers-*` target nothing is added.
The `layers_target` fixture gives the Target to a team's own tests.

The `layers_mock` fixture (with `layers_mock_options`, `--layers-mock-store` and
`--layers-mock-stage-seconds`) gives a team's own tests the real mock, one process per session.

Installed, this plugin loads in every pytest session of the environment, so it must cost
nothing there: only pytest and the standard library at import; the kit (openapi-core, httpx,
Schemathesis) loads when a `--layers-*` target is given, the mock when `layers_mock` is used.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from layers_kit.conformance import options  # standard library only, as Target is
from layers_kit.conformance.target import Target

if TYPE_CHECKING:
    from layers_kit.conformance.registry import Check
    from layers_kit.mock.embed import MockServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("layers", "Layers conformance kit")
    options.add_pytest_options(group)
    _add_mock_fixture_options(group)


class LayersFailure(Exception):
    pass


class CheckItem(pytest.Item):
    def __init__(self, *, check: Check, **kw) -> None:
        super().__init__(**kw)
        self.check = check
        self.add_marker(pytest.mark.layers)

    def runtest(self) -> None:
        from layers_kit.conformance.runner import (
            ERROR,
            FAILED,
            INCONCLUSIVE,
            NOT_RUN,
            WAIVED,
            run_check,
        )
        from layers_kit.conformance.verdicts import FAIL_ON_NAMES

        state = self.session.config.stash[_STATE]
        outcome = run_check(self.check, state["target"], state["contract"], state["rotation"],
                            observations=state["observations"], problems=state["problems"])
        # failed -> fail; not run, inconclusive, waived -> skip with the reason, or fail when
        # --layers-fail-on names the verdict; error -> error
        fail_on = {FAIL_ON_NAMES[n] for n in state["fail_on"]}
        if outcome.status in (NOT_RUN, INCONCLUSIVE, WAIVED) and outcome.status in fail_on:
            hint = f" (run it with {outcome.option})" if outcome.option else ""
            raise LayersFailure(f"{outcome.rule} {outcome.title}: {outcome.status} and "
                                f"--layers-fail-on names it: {outcome.message}{hint}")
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


def layers_options(config: pytest.Config) -> options.Options:
    """The kit's options of this session: its `--layers-*` options, else the environment's
    keys, else the model's defaults (the bundled mock's values apply in the collection)."""
    given = options.given_pytest(config.getoption)
    # --layers-mock brings its own keys: the environment's are read only for another target
    return options.resolve(given, None if given.get("mock") else os.environ)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "layers: a check of the Layers conformance kit")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    opts = layers_options(config)
    if not opts.base_url and not opts.mock:
        return  # nothing of the kit is imported unless a target is given
    from layers_kit.conformance.contract import Contract
    from layers_kit.conformance.runner import preflight, select

    state: dict = {}
    if opts.mock:
        from layers_kit.conformance import bundled  # the one door to the mock

        mock = bundled.start_mock(*bundled.MOCK_ARGS)
        config.add_cleanup(mock.stop)
        opts = options.resolve(options.given_pytest(config.getoption),
                               door=bundled.door_values(mock.url))
    elif not opts.api_key:
        raise pytest.UsageError(f"--layers-base-url needs --layers-api-key (or "
                                f"${options.ENV['api_key']})")
    from layers_kit.conformance.verdicts import FAIL_ON_NAMES

    unknown = [v for v in opts.fail_on if v not in FAIL_ON_NAMES]
    if unknown:
        raise pytest.UsageError(f"--layers-fail-on {', '.join(unknown)}: the verdicts are "
                                f"{', '.join(FAIL_ON_NAMES)}")
    state["fail_on"] = tuple(opts.fail_on)
    state["target"] = opts.target()
    state["contract"] = Contract(state["target"].base_url)
    state["problems"] = preflight(state["target"], state["contract"]).problems
    from layers_kit.conformance.observations import Observations

    state["observations"] = Observations()
    ids = state["target"].container_ids
    state["rotation"] = itertools.cycle(ids) if ids else iter(())
    config.stash[_STATE] = state
    for c in select(list(opts.only) or None):
        items.append(CheckItem.from_parent(session, name=f"layers::{c.rule}::{c.name}",
                                           check=c))


@pytest.fixture
def layers_target(request: pytest.FixtureRequest) -> Target:
    """The Target the `--layers-*` options describe (for a team's own checks)."""
    state = request.config.stash.get(_STATE, None)
    if state is None:
        pytest.skip("no --layers-base-url or --layers-mock given")
    return state["target"]


# The mock as a fixture for a team's own tests (D11). Kept apart from the checks above.

def _add_mock_fixture_options(group: pytest.OptionGroup) -> None:
    group.addoption("--layers-mock-store", default="memory",
                    help="store of the layers_mock fixture's mock: memory (default), "
                         "sqlite:///path.db or redis://host:port/db")
    group.addoption("--layers-mock-stage-seconds", type=float, default=1.0,
                    help="length of each of a job's 5 stages in the layers_mock fixture's "
                         "mock (default 1.0; its clock is manual)")


@pytest.fixture(scope="session")
def layers_mock_options(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Keyword arguments of `mock.serve` for the session's mock; override it in a conftest.py.

    `clock` must stay "manual": `layers_mock.advance()` moves time.
    """
    return {"clock": "manual",
            "store": pytestconfig.getoption("--layers-mock-store"),
            "stage_seconds": pytestconfig.getoption("--layers-mock-stage-seconds")}


@pytest.fixture(scope="session")
def _layers_mock_server(layers_mock_options: dict[str, Any]) -> Iterator[MockServer]:
    from layers_kit.mock.embed import serve

    with serve(**layers_mock_options) as server:
        yield server


@pytest.fixture
def layers_mock(_layers_mock_server: MockServer) -> MockServer:
    """The real mock on a free loopback port, one process per session, reset to its fixtures
    before each test that uses it: `url`, `keys`, `reset()`, `advance(seconds)`,
    `requests(**filters)`, `fault(**spec)`, `clear_faults()`."""
    _layers_mock_server.reset()
    return _layers_mock_server
