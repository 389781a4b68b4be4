"""The kit's options (conformance/options.py): one model, every default written once.

The CLI, the pytest plugin, `Target` and the `--mock` door all derive from it: their defaults
are the model's, the keys come from the same environment variables everywhere, and only the
`--mock` door (and the pytest plugin's `layers_mock` fixture) imports the mock.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from layers_kit.conformance import bundled, cli, options
from layers_kit.conformance.options import DEFAULTS, ENV, FIELDS, Options
from layers_kit.conformance.target import Target
from tests.support import ids

ROOT = Path(__file__).resolve().parents[1]
KEY_ENVS = {"api_key": "LAYERS_API_KEY", "readonly_key": "LAYERS_READONLY_KEY",
            "other_org_key": "LAYERS_OTHER_ORG_KEY", "broke_key": "LAYERS_BROKE_KEY",
            "credits_key": "LAYERS_CREDITS_KEY", "extra_api_keys": "LAYERS_EXTRA_API_KEYS"}
# Ids, the base URL and the TLS files come from the environment too (every entry point).
OTHER_ENVS = {"base_url": "LAYERS_BASE_URL", "project_id": "LAYERS_PROJECT_ID",
              "other_project_id": "LAYERS_OTHER_PROJECT_ID",
              "broke_container_id": "LAYERS_BROKE_CONTAINER_ID",
              "moderation_text": "LAYERS_MODERATION_TEXT", "ca_bundle": "LAYERS_CA_BUNDLE",
              "client_cert": "LAYERS_CLIENT_CERT", "client_key": "LAYERS_CLIENT_KEY",
              "credits_container_id": "LAYERS_CREDITS_CONTAINER_ID",
              "policy_project_id": "LAYERS_POLICY_PROJECT_ID"}
NO_KEYS = {var: "" for var in {**KEY_ENVS, **OTHER_ENVS}.values()}  # none of this process'



def _defaults() -> dict:
    return dataclasses.asdict(Options())


def _run_parser() -> argparse.ArgumentParser:
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _pytest(tmp_path: Path, test: str, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """pytest in an unrelated folder, our plugin loaded through its installed entry point only."""
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent(test), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "layers_conformance", *args], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path,
                          env={**os.environ, **NO_KEYS, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                               **(env or {})})


# --- every default written once ---------------------------------------------------------

def test_the_model_names_the_documented_environment_variables():
    assert ENV == {**KEY_ENVS, **OTHER_ENVS}
    assert cli.KEY_ENV == {"api": "LAYERS_API_KEY", "readonly": "LAYERS_READONLY_KEY",
                           "other": "LAYERS_OTHER_ORG_KEY", "broke": "LAYERS_BROKE_KEY"}


def test_the_cli_defaults_nothing_itself_and_resolves_to_the_model():
    args = cli.parser().parse_args(["run"])
    assert options.given_args(args) == {}  # no option has a default of the parser's own
    assert dataclasses.asdict(options.resolve(options.given_args(args), {})) == _defaults()
    for action in _run_parser()._actions:
        if action.dest in FIELDS:
            assert action.default is argparse.SUPPRESS, action.dest


def test_the_cli_help_shows_the_model_defaults():
    text = " ".join(_run_parser().format_help().split())  # argparse wraps lines
    assert f"(default {DEFAULTS.poll_interval:g})" in text
    assert f"(default {DEFAULTS.job_timeout:g})" in text
    assert f"(default {DEFAULTS.max_wait:g})" in text
    assert f"(default {DEFAULTS.request_timeout:g})" in text


def test_the_cli_parses_each_option_into_the_model():
    args = cli.parser().parse_args([
        "run", "--base-url", "http://x", "--api-key", "k", "--container-id", "cnt_1",
        "--container-id", "cnt_2", "--only", "R1", "--no-schemathesis", "--jobs", "2",
        "--poll-interval", "0.3", "--job-timeout", "9", "--request-timeout", "7",
        "--max-wait", "5", "--exclude-check", "x", "--quick"])
    opts = options.resolve(options.given_args(args), {})
    assert (opts.container_ids, opts.only, opts.schemathesis, opts.jobs) == (
        ("cnt_1", "cnt_2"), ("R1",), False, 2)
    target = opts.target()
    assert (target.poll_interval, target.job_timeout, target.request_timeout,
            target.max_wait) == (0.3, 9.0, 7.0, 5.0)
    assert opts.run_kwargs()["profile"] == "quick"
    assert opts.run_kwargs()["exclude_checks"] == ["x"]


def test_target_defaults_are_the_model_defaults():
    target = Target(base_url="http://x", api_key="k")
    names = [f.name for f in dataclasses.fields(Target) if f.name != "tls"]
    assert set(names) <= set(FIELDS)  # every field of Target is an option of the model
    assert target.tls == DEFAULTS.tls()  # the TLS options, as one setting
    for name in names:
        if name not in ("base_url", "api_key"):
            assert getattr(target, name) == getattr(DEFAULTS, name), name
    assert DEFAULTS.replace(base_url="http://x", api_key="k").target() == target


def test_precedence_command_line_then_environment_then_door_then_default():
    door = {"api_key": "door", "poll_interval": 0.01}
    env = {"LAYERS_API_KEY": "env", "LAYERS_BROKE_KEY": ""}  # empty gives nothing
    assert options.resolve({"api_key": "cli"}, env, door).api_key == "cli"
    assert options.resolve({}, env, door).api_key == "env"
    assert options.resolve({}, None, door).api_key == "door"
    assert options.resolve({}, env, door).broke_key is None
    assert options.resolve({}, env, door).poll_interval == 0.01
    assert options.resolve({}, env).poll_interval == DEFAULTS.poll_interval
    with pytest.raises(TypeError, match="not options"):
        options.resolve({"poll": 1})


def test_the_mock_door_overrides_only_what_it_names_and_a_given_value_wins():
    assert set(bundled.MOCK_OVERRIDES) <= set(FIELDS)
    target = bundled.target_for("http://127.0.0.1:1")
    for name, value in bundled.MOCK_OVERRIDES.items():
        if hasattr(target, name):
            assert getattr(target, name) == value
    assert target.request_timeout == DEFAULTS.request_timeout  # not overridden: the model's
    assert target.max_wait == DEFAULTS.max_wait
    given = bundled.target_for("http://127.0.0.1:1", poll_interval=0.3, max_wait=30)
    assert (given.poll_interval, given.max_wait) == (0.3, 30)
    assert target.api_key and target.project_id  # the fixtures' keys and ids


_DUMP_OPTIONS = """
    import dataclasses, json, os
    from layers_kit.conformance import options, pytest_plugin

    def test_dump(request):
        names = [n for n, f in options.FIELDS.items() if options.pytest_flag(f)]
        raw = {n: request.config.getoption("layers_" + n) for n in names}
        opts = pytest_plugin.layers_options(request.config)
        with open(os.environ["LAYERS_REPORT"], "w") as fh:
            json.dump({"raw": raw, "options": dataclasses.asdict(opts)}, fh)
"""


def test_the_pytest_plugin_defaults_are_the_model_defaults(tmp_path):
    report = tmp_path / "options.json"
    out = _pytest(tmp_path, _DUMP_OPTIONS, env={"LAYERS_REPORT": str(report)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    seen = json.loads(report.read_text())
    assert set(seen["raw"].values()) == {None}  # no pytest option has a default of its own
    assert seen["options"] == json.loads(json.dumps(_defaults()))


def test_the_pytest_plugin_keeps_its_option_names_and_adds_the_poll_interval(tmp_path):
    out = _pytest(tmp_path, "def test_nothing():\n    pass\n", "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("--layers-base-url", "--layers-mock", "--layers-api-key",
                 "--layers-readonly-key", "--layers-other-org-key", "--layers-other-project-id",
                 "--layers-broke-key", "--layers-broke-container-id", "--layers-moderation-text",
                 "--layers-project-id", "--layers-container-id", "--layers-only",
                 "--layers-job-timeout", "--layers-max-wait", "--layers-poll-interval",
                 "--layers-request-timeout", "--layers-mock-store",
                 "--layers-mock-stage-seconds", *KEY_ENVS.values()):
        assert name in out.stdout, name


# --- the keys from the environment --------------------------------------------------------

@pytest.fixture(scope="module")
def live_mock():
    mock = bundled.start_mock(*bundled.MOCK_ARGS)
    yield mock
    mock.stop()


_SHOW_TARGET = """
    import os

    def test_own(layers_target):
        assert layers_target.api_key == os.environ["LAYERS_API_KEY"]
        assert layers_target.readonly_key == os.environ["LAYERS_READONLY_KEY"]
        assert layers_target.poll_interval == 0.3
"""


def test_layers_api_key_reaches_the_pytest_plugin(tmp_path, live_mock):
    out = _pytest(tmp_path, _SHOW_TARGET, "--layers-base-url", live_mock.url,
                  "--layers-only", "d8_unauthenticated", "--layers-poll-interval", "0.3",
                  env={"LAYERS_API_KEY": ids.FULL, "LAYERS_READONLY_KEY": ids.READONLY})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout, out.stdout[-3000:]


def test_the_pytest_plugin_without_a_key_names_the_environment_variable(tmp_path, live_mock):
    out = _pytest(tmp_path, _SHOW_TARGET, "--layers-base-url", live_mock.url)
    assert out.returncode != 0
    assert "--layers-api-key" in out.stderr and "LAYERS_API_KEY" in out.stderr, out.stderr


def test_the_mock_door_of_the_pytest_plugin_ignores_the_environment_keys(tmp_path):
    test = """
        def test_own(layers_target):
            assert layers_target.api_key == "lp_test_full"
            assert layers_target.poll_interval == 0.08  # the door's override
    """
    out = _pytest(tmp_path, test, "--layers-mock", "--layers-only", "d8_unauthenticated",
                  env={"LAYERS_API_KEY": "lp_from_the_environment"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


# --- the CLI's help ------------------------------------------------------------------------

def test_the_cli_help_names_the_environment_variables():
    out = subprocess.run([sys.executable, "-m", "layers_kit.conformance", "run", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # argparse wraps lines
    for var in KEY_ENVS.values():
        assert f"${var}" in text, var
    for name in ("--poll-interval", "--job-timeout", "--request-timeout", "--max-wait",
                 "--only", "--quick", "--waive", "--report"):
        assert name in text, name
