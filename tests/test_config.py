"""One configuration object: its defaults are the CLI's, and the CLI is derived from it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from layers_kit.mock import cli
from layers_kit.mock.config import Config, from_args


def test_cli_defaults_are_the_config_defaults():
    assert from_args(cli.parse_args([])) == Config()


def test_every_option_field_is_a_flag_and_round_trips():
    args = cli.parse_args(["--host", "0.0.0.0", "--port", "0", "--store", "sqlite:///x.db",
                           "--stage-seconds", "0.5", "--clock", "manual", "--reset",
                           "--retention", "60", "--idempotency-ttl", "5", "--workers", "2",
                           "--fixtures", "f.yaml", "--validate-responses",
                           "--log-level", "info", "--admin-token", "a-long-enough-token-1"])
    config = from_args(args)
    assert config == Config(host="0.0.0.0", port=0, store="sqlite:///x.db", stage_seconds=0.5,
                            clock="manual", reset_on_start=True, retention_seconds=60.0,
                            idempotency_ttl=5.0, workers=2, fixtures=Path("f.yaml"),
                            validate_responses=True, log_level="info",
                            admin_token="a-long-enough-token-1")
    options = {f.name for f in fields(Config) if "help" in f.metadata}
    assert options <= set(vars(args))


def test_worker_processes_get_the_same_config():
    config = Config(fixtures=Path("/tmp/f.yaml"), clock="manual", stage_seconds=0.25)
    assert Config.from_json(config.to_json()) == config
