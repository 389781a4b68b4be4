"""The mock's configuration: one object, every default written once, the CLI derived from it.

Each field of `Config` is an option of `layers-mock`. Its default, its help text and its flag
live in the field's declaration; `add_arguments` builds the argparse options from the fields
and `from_args` builds the `Config` back, so adding an option is adding one field. The domain
and the web layer take their settings from a `Config`, never from defaults of their own.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

CLOCKS = ("real", "manual")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def option(default: Any, help: str, *, flag: str | None = None, **argparse_kwargs: Any) -> Any:
    """A `Config` field that is also a command-line option (`--field-name` unless `flag`).

    `argparse_kwargs` go to `add_argument` (choices, metavar, type, action).
    """
    meta = {"help": help, "flag": flag, "argparse": argparse_kwargs}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    host: str = option("127.0.0.1", "address to bind")
    port: int = option(4010, "port (0 picks a free one)")
    fixtures: Path | None = option(None, "fixtures YAML (default: the bundled ones)",
                                   type=Path, metavar="PATH")
    store: str = option("memory", "memory, sqlite:///path/to/file.db or redis://host:port/db",
                        metavar="URL")
    workers: int = option(1, "worker processes (needs a shared store: sqlite or redis)")
    stage_seconds: float = option(2.0, "duration of each of the 5 job stages", metavar="S")
    clock: str = option("real", "real time, or a clock moved only by POST /__mock/clock/advance",
                        choices=CLOCKS)
    admin_token: str | None = option(
        None, "require this X-Admin-Token on /__mock/ (and allow the control API on a "
              "non-loopback address)", metavar="T")
    reset_on_start: bool = option(False, "reload the fixtures even if a durable store already "
                                         "holds state", flag="--reset")
    validate_responses: bool = option(False, "check every response against the spec (a broken "
                                             "one becomes a 500)")
    idempotency_ttl: float = option(24 * 3600.0, "seconds an Idempotency-Key is remembered",
                                    metavar="S")
    retention_seconds: float = option(
        7 * 24 * 3600.0, "seconds ended jobs and superseded assets are kept",
        flag="--retention", metavar="S")
    log_level: str = option("warning", "log level; info adds an access log", choices=LOG_LEVELS)
    rate_limits: str = option(
        "off", "put every key on this rate-limit tier of the fixtures (lp_test_limited is "
               "always on standard)", choices=("standard", "off"))
    cors: bool = option(True, "turn CORS off (it is on for any origin by default)",
                        flag="--no-cors", action="store_false")
    cors_origins: list[str] = option(
        [], "allow only this browser origin, e.g. http://localhost:3000 (repeatable; default: "
            "any origin)", flag="--cors-origin", action="append", metavar="ORIGIN")
    # Not options: fixed sizes a test may lower.
    journal_size: int = 1000

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy (for worker processes, which get the config in their environment)."""
        raw = dataclasses.asdict(self)
        raw["fixtures"] = str(self.fixtures) if self.fixtures else None
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Config:
        raw = dict(raw)
        raw["fixtures"] = Path(raw["fixtures"]) if raw.get("fixtures") else None
        return cls(**{k: v for k, v in raw.items() if k in _FIELD_NAMES})


_FIELD_NAMES = {f.name for f in fields(Config)}


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per `Config` field that declares one; defaults shown from the field."""
    for f in fields(Config):
        if "help" not in f.metadata:
            continue
        kwargs = dict(f.metadata["argparse"])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f.metadata["help"]
        if f.type in ("bool", bool):
            kwargs.setdefault("action", "store_true")
        else:
            kwargs.setdefault("type", {"int": int, "float": float}.get(str(f.type), str))
            if default not in (None, [], ()):
                help_text += f" (default {default:g})" if isinstance(default, float) \
                    else f" (default {default})"
        parser.add_argument(_flag(f), dest=f.name, default=default, help=help_text, **kwargs)


def from_args(args: argparse.Namespace) -> Config:
    """The `Config` of parsed options (fields without an option keep their default)."""
    return Config(**{k: v for k, v in vars(args).items() if k in _FIELD_NAMES})
