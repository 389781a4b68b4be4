"""The mock's configuration: one object, every default written once, the CLI derived from it.

Each field of `Config` is an option of `layers-mock`. Its default, its help text and its flag
live in the field's declaration; `add_arguments` builds the argparse options from the fields
and `from_args` builds the `Config` back, so adding an option is adding one field. The domain
and the web layer take their settings from a `Config`, never from defaults of their own.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
import math
import os
import secrets
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

CLOCKS = ("real", "manual")
# Worker processes at most: 4 per CPU core, never above 64 (`--workers 100000` spawned 849
# processes until the machine ran out of memory).
MAX_WORKERS = min(64, 4 * (os.cpu_count() or 1))
MIN_TOKEN_LENGTH = 16  # characters of an admin token at least
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
    workers: int = option(1, "worker processes (needs a shared store: sqlite or redis; at most "
                             f"{MAX_WORKERS} here: 4 per CPU core, never above 64)")
    stage_seconds: float = option(2.0, "duration of each of the 5 job stages", metavar="S")
    clock: str = option("real", "real time, or a clock moved only by POST /__mock/clock/advance",
                        choices=CLOCKS)
    admin_token: str | None = option(
        None, "require this X-Admin-Token on /__mock/ (and allow the control API on a "
              "non-loopback address); visible in the process list: prefer "
              "--admin-token-file or the LAYERS_MOCK_ADMIN_TOKEN environment variable",
        metavar="T")
    admin_token_file: Path | None = option(
        None, "read the admin token from this file (its first line)", type=Path,
        metavar="PATH")
    reset_on_start: bool = option(False, "reload the fixtures even if a durable store already "
                                         "holds state", flag="--reset")
    validate_responses: bool = option(False, "check every response against the spec (a broken "
                                             "one becomes a 500)")
    idempotency_ttl: float = option(24 * 3600.0, "seconds an Idempotency-Key is remembered",
                                    metavar="S")
    idempotency_max_keys: int = option(
        10_000, "Idempotency-Keys remembered per API key at most; past it the oldest are "
                "forgotten first", metavar="N")
    max_containers: int = option(
        5_000, "containers created through the API kept per org at most; past it the oldest "
               "that run no job are forgotten first (fixtures are never)", metavar="N")
    store_timeout: float = option(
        2.0, "seconds a request waits for a SQLite or Redis store before its 503 (Retry-After)",
        metavar="S")
    retention_seconds: float = option(
        7 * 24 * 3600.0, "seconds ended jobs and superseded assets are kept",
        flag="--retention", metavar="S")
    read_timeout: float = option(
        10.0, "seconds a client has to send a whole request, headers and body (slower "
              "connections are closed), and an idle keep-alive connection is kept",
        metavar="S")
    log_level: str = option("warning", "log level; info adds an access log", choices=LOG_LEVELS)
    rate_limits: str = option(
        "off", "put every key on this rate-limit tier of the fixtures (lp_test_limited is "
               "always on standard)", choices=("standard", "off"))
    cors: bool = option(True, "turn CORS off (it is on for any origin by default)",
                        flag="--no-cors", action="store_false")
    cors_origins: list[str] = option(
        [], "allow only this browser origin, e.g. http://localhost:3000 (repeatable; default: "
            "any origin)", flag="--cors-origin", action="append", metavar="ORIGIN")
    client_report: bool = option(
        False, "record in the journal what the client report needs (GET /__mock/client-report: "
               "the client rules C1-C6); the layers_mock fixture turns it on")
    chaos: float = option(
        0.0, "answer this share of the API's requests with chaos (429, 503, latency or a "
             "dropped connection), seeded; POST /__mock/chaos changes it at run time",
        metavar="SHARE")
    chaos_seed: int = option(0, "the chaos seed: the same seed and requests, the same faults",
                             metavar="N")
    chaos_kinds: str = option("429,503,latency,drop", "what chaos answers with, comma-separated",
                              metavar="KINDS")
    chaos_operations: str = option("", "operationIds chaos applies to, comma-separated (default: "
                                       "every operation)", metavar="IDS")
    # Not options: fixed sizes a test may lower.
    journal_size: int = 1000
    # What worker processes get instead of the token (to_json): a random key of this run and
    # the token's HMAC-SHA256 under it; they compare MACs. Not compared: a fresh key per run.
    admin_token_key: str | None = field(default=None, compare=False)
    admin_token_mac: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Refuse at start what could only fail later, in one clear sentence."""
        problem = _problem(self)
        if problem:
            raise ConfigError(problem)
        if self.admin_token is not None and self.admin_token_key is None:
            key = secrets.token_hex(32)
            object.__setattr__(self, "admin_token_key", key)
            object.__setattr__(self, "admin_token_mac", admin_mac(key, self.admin_token))

    @property
    def admin_digest(self) -> str | None:
        """The admin token's HMAC-SHA256 (hex) under `admin_token_key`, or None when the
        control API has no token."""
        return self.admin_token_mac

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy (for worker processes, which get the config in their environment)."""
        raw = dataclasses.asdict(self)
        raw["fixtures"] = str(self.fixtures) if self.fixtures else None
        raw["admin_token_file"] = str(self.admin_token_file) if self.admin_token_file else None
        # Workers get the config through the pipe multiprocessing spawns them with (cli.py),
        # never the environment; and even so the token's keyed MAC, never the token.
        raw["admin_token"] = None
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Config:
        raw = dict(raw)
        raw["fixtures"] = Path(raw["fixtures"]) if raw.get("fixtures") else None
        raw["admin_token_file"] = None  # the digest came along already
        return cls(**{k: v for k, v in raw.items() if k in _FIELD_NAMES})


_FIELD_NAMES = {f.name for f in fields(Config)}
ADMIN_TOKEN_ENV = "LAYERS_MOCK_ADMIN_TOKEN"


def forget_environment_token(name: str = ADMIN_TOKEN_ENV) -> None:
    """Remove the admin token from this process's environment, and overwrite it in the
    environment block the kernel shows in /proc/<pid>/environ (unsetenv only drops the
    pointer to it; the bytes stay there, readable by the user's other processes)."""
    if name not in os.environ:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
        prefix = name.encode() + b"="
        i = 0
        while environ[i]:
            address = environ[i]
            entry = ctypes.string_at(address)
            if entry.startswith(prefix):
                ctypes.memset(address + len(prefix), 0, len(entry) - len(prefix))
            i += 1
    except (OSError, ValueError, AttributeError):  # no libc environ (not glibc): best effort
        pass
    os.environ.pop(name, None)


def admin_mac(key_hex: str, token: str) -> str:
    """HMAC-SHA256 (hex) of a token under a run's key (a salt no table was computed for)."""
    return hmac.new(bytes.fromhex(key_hex), token.encode("utf-8", "surrogateescape"),
                    hashlib.sha256).hexdigest()


class ConfigError(ValueError):
    """An option value the mock cannot run with; the message names the option."""


def _positive(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _problem(c: Config) -> str | None:
    if not _positive(c.stage_seconds):
        return f"--stage-seconds must be a finite number of seconds above 0, not {c.stage_seconds}"
    if not _positive(c.idempotency_ttl):
        return (f"--idempotency-ttl must be a finite number of seconds above 0, not "
                f"{c.idempotency_ttl}")
    if not _positive(c.retention_seconds):
        return f"--retention must be a finite number of seconds above 0, not {c.retention_seconds}"
    if not _positive(c.read_timeout):
        return f"--read-timeout must be a finite number of seconds above 0, not {c.read_timeout}"
    if not isinstance(c.port, int) or not 0 <= c.port <= 65535:
        return f"--port must be a whole number from 0 to 65535, not {c.port}"
    if not isinstance(c.workers, int) or not 1 <= c.workers <= MAX_WORKERS:
        return (f"--workers must be from 1 to {MAX_WORKERS} on this machine (4 per CPU core, "
                f"never above 64), not {c.workers}")
    if not _positive(c.store_timeout) or c.store_timeout > 60:
        return f"--store-timeout must be a number of seconds above 0 and at most 60, not " \
               f"{c.store_timeout}"
    if not isinstance(c.chaos, int | float) or not 0 <= c.chaos <= 1:
        return f"--chaos must be a share from 0 to 1, not {c.chaos}"
    kinds = [k.strip() for k in c.chaos_kinds.split(",") if k.strip()]
    if not kinds or set(kinds) - {"429", "503", "latency", "drop"}:
        return f"--chaos-kinds takes 429, 503, latency and drop, not {c.chaos_kinds!r}"
    for name, value in (("--idempotency-max-keys", c.idempotency_max_keys),
                        ("--max-containers", c.max_containers)):
        if not isinstance(value, int) or not 100 <= value <= 10_000_000:
            return f"{name} must be a whole number from 100 to 10000000, not {value}"
    token = c.admin_token
    if token is not None and (not token or not all(0x21 <= ord(ch) <= 0x7E for ch in token)):
        # An HTTP header carries ASCII: a token with other characters could never match.
        return ("the admin token must be printable ASCII without spaces (an HTTP header "
                "cannot carry anything else), and not empty")
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        return (f"the admin token must have at least {MIN_TOKEN_LENGTH} characters (it guards "
                f"the control API; e.g. `openssl rand -hex 16`), not {len(token)}")
    return None


def _read_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"--admin-token-file {path}: cannot read it ({exc})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"--admin-token-file {path}: other users may read it (mode "
                          f"{stat.S_IMODE(mode):04o}); chmod 600 it")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--admin-token-file {path}: cannot read it ({exc})") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"--admin-token-file {path}: the first line is empty")
    return lines[0].strip()


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


def from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """The `Config` of parsed options (fields without an option keep their default).

    The admin token comes from --admin-token, else --admin-token-file, else the
    LAYERS_MOCK_ADMIN_TOKEN environment variable. Raises ConfigError for a value the mock
    cannot run with.
    """
    values = {k: v for k, v in vars(args).items() if k in _FIELD_NAMES}
    env = os.environ if environ is None else environ
    if values.get("admin_token") is None:
        if values.get("admin_token_file") is not None:
            values["admin_token"] = _read_token(values["admin_token_file"])
        elif env.get(ADMIN_TOKEN_ENV):
            values["admin_token"] = env[ADMIN_TOKEN_ENV]
    return Config(**values)
