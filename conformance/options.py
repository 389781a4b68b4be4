"""The kit's options: one model, every default written once, the CLI and pytest plugin derived.

Each field of `Options` is an option of `layers-conformance run` and, when it names one, of the
pytest plugin (`--layers-...`). Its default, help, command-line flag, pytest flag and (for the
keys) environment variable live in the field's declaration, in the manner of `mock/config.py`:
`add_arguments` and `add_pytest_options` build the options from the fields, `given_args` and
`given_pytest` read back what was actually given, and `resolve` builds the `Options`.

A value comes from, first to last: the command line (or pytest's), the environment (keys
only, and never for `--mock`, which brings its own), the values of a door (`--mock`: the
bundled mock's keys and ids, and its timings, see `bundled.py`), the default below.

`Target` (target.py), what the checks read, takes its defaults from these fields. The output
options (JUnit XML, reports, verbosity) are not part of the model: they belong to the CLI
(pytest has its own output). Standard library only: the pytest plugin imports this module in
every pytest session of the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Argument groups of `layers-conformance run`, in the order --help shows them.
GROUPS = {"target": "target", "unlock": "inputs that unlock more checks",
          "tls": "TLS (one configuration for the checks, Schemathesis and the preflight)",
          "how": "how"}
NO_PYTEST = ""  # `pytest=NO_PYTEST`: an option the pytest plugin does not offer


def option(default: Any, help: str, *, group: str, flag: str | None = None,
           pytest: str | None = None, pytest_help: str | None = None, env: str | None = None,
           **argparse_kwargs: Any) -> Any:
    """An `Options` field that is an option: `--field-name` unless `flag`; `--layers-` and the
    flag's name in pytest unless `pytest` (NO_PYTEST: none); `env` is an environment variable
    that gives the value when the command line does not.

    `argparse_kwargs` go to `add_argument` and pytest's `addoption` (type, action, metavar).
    """
    meta = {"help": help, "group": group, "flag": flag, "pytest": pytest,
            "pytest_help": pytest_help, "env": env, "argparse": argparse_kwargs}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Options:
    # The target.
    base_url: str | None = option(None, "the implementation's base URL", group="target",
                                  pytest_help="base URL of the implementation to check",
                                  env="LAYERS_BASE_URL", metavar="URL")
    api_key: str | None = option(None, "a key with every scope of the API", group="target",
                                 env="LAYERS_API_KEY", metavar="KEY")
    extra_api_keys: tuple[str, ...] = option(
        (), "another key of the same org with every scope (repeatable): the kit spreads its "
            "job starts over all its keys, each with its own rate-limit buckets (D13), so that "
            "a run against per-key limits waits less; the environment variable takes several, "
            "separated by commas", group="target", flag="--extra-api-key", action="append",
        env="LAYERS_EXTRA_API_KEYS", metavar="KEY")
    mock: bool = option(False, "start the bundled mock on a free port and test it",
                        group="target", pytest_help="start the bundled mock and check it")
    # Inputs that unlock more checks.
    project_id: str | None = option(None, "a project the kit may create containers in",
                                    group="unlock", env="LAYERS_PROJECT_ID", metavar="ID")
    policy_project_id: str | None = option(
        None, "another project of --api-key's org whose review policy the policy checks (R8, "
              "D16, D5) may change, restoring it after each: they then run alongside the "
              "other checks instead of alone at the end", group="unlock",
        env="LAYERS_POLICY_PROJECT_ID", metavar="ID")
    container_ids: tuple[str, ...] = option(
        (), "an existing completed container (repeatable)", group="unlock",
        flag="--container-id", action="append", metavar="ID")
    readonly_key: str | None = option(
        None, "a key without content:write, for the scope checks (D8); it needs content:read",
        group="unlock", env="LAYERS_READONLY_KEY", metavar="KEY")
    other_org_key: str | None = option(
        None, "a key of another org, for tenancy (R12/D8); it needs content:read "
              "content:write jobs:read jobs:cancel", group="unlock", env="LAYERS_OTHER_ORG_KEY",
        metavar="KEY")
    other_project_id: str | None = option(None, "a project of that other org", group="unlock",
                                          env="LAYERS_OTHER_PROJECT_ID", metavar="ID")
    broke_key: str | None = option(
        None, "a key of an org without credits (R12); it needs content:write", group="unlock",
        env="LAYERS_BROKE_KEY", metavar="KEY")
    broke_container_id: str | None = option(None, "a container of that org", group="unlock",
                                            env="LAYERS_BROKE_CONTAINER_ID", metavar="ID")
    moderation_text: str | None = option(None, "brief text the safety check refuses (R12)",
                                         group="unlock", env="LAYERS_MODERATION_TEXT",
                                         metavar="TEXT")
    credits_key: str | None = option(
        None, "a key of an org holding at least 120 and fewer than 600 credits: makes credits "
              "observable (R11: a canceled job releases its reservation)", group="unlock",
        env="LAYERS_CREDITS_KEY", metavar="KEY")
    credits_container_id: str | None = option(
        None, "a completed container of that org", group="unlock",
        env="LAYERS_CREDITS_CONTAINER_ID", metavar="ID")
    # TLS (conformance/tls.py): the system trust store unless one of these says otherwise.
    ca_bundle: str | None = option(
        None, "a PEM bundle of the CAs to trust instead of the system store (SSL_CERT_FILE "
              "and SSL_CERT_DIR are honoured without it)", group="tls",
        env="LAYERS_CA_BUNDLE", metavar="PATH")
    client_cert: str | None = option(None, "a client certificate (PEM) for mutual TLS",
                                     group="tls", env="LAYERS_CLIENT_CERT", metavar="PATH")
    client_key: str | None = option(None, "the client certificate's key (PEM), when not in "
                                          "--client-cert", group="tls",
                                    env="LAYERS_CLIENT_KEY", metavar="PATH")
    insecure: bool = option(False, "verify no certificate (every report says so)",
                            group="tls")
    # How the run goes.
    quick: bool = option(False, "a short profile for local use (small Schemathesis run)",
                         group="how", pytest=NO_PYTEST)
    only: tuple[str, ...] = option((), "only these rule ids or check names (repeatable)",
                                   group="how", action="append", metavar="ID")
    schemathesis: bool = option(True, "skip the Schemathesis phase (business rules only)",
                                group="how", flag="--no-schemathesis", action="store_false",
                                pytest=NO_PYTEST)
    schemathesis_examples: int | None = option(None, "examples per operation", group="how",
                                               type=int, metavar="N", pytest=NO_PYTEST)
    seed: int | None = option(None, "Schemathesis seed, for a reproducible run", group="how",
                              type=int, pytest=NO_PYTEST)
    jobs: int | None = option(
        None, "checks run at once with --project-id (default 4 for each key the checks use: "
              "4 with one key; --mock runs 8); 1 runs them one at a time; lower it for a "
              "target with tight rate limits", group="how", type=int, metavar="N",
        pytest=NO_PYTEST)
    # option() returns a dataclasses.field, as field() does (RUF009 knows only mock's option)
    waive: Path | None = option(
        None, "YAML or JSON list of {id: rule or check, reason, expires?}: those checks are "
              "reported waived", group="how", type=Path, metavar="FILE", pytest=NO_PYTEST)
    exclude_checks: tuple[str, ...] = option(
        (), "a Schemathesis check to leave out, e.g. negative_data_rejection (repeatable)",
        group="how", flag="--exclude-check", action="append", metavar="NAME",
        pytest=NO_PYTEST)
    job_timeout: float = option(300.0, "seconds to wait for a job to end", group="how",
                                type=float, metavar="S")
    poll_interval: float = option(
        0.5, "first polling delay in seconds; grows x1.3 up to 10 s, or adapts to the "
             "stages seen when a check polls steadily", group="how", type=float, metavar="S")
    request_timeout: float = option(30.0, "seconds one request may take", group="how",
                                    type=float, metavar="S")
    max_wait: float = option(
        120.0, "seconds one request may wait in all on 429/503 Retry-After before its check "
               "is inconclusive", group="how", type=float, metavar="S")
    fail_on: tuple[str, ...] = option(
        ("failed",), "verdicts that fail the run, comma-separated: failed, error, "
                     "inconclusive, not-run, waived (a failed check exits 1, the others 2)",
        group="how", type=lambda text: tuple(v.strip() for v in text.split(",") if v.strip()),
        metavar="VERDICTS")
    plan: bool = option(False, "print what a run would send, create and spend, and send "
                               "nothing", group="how", pytest=NO_PYTEST)

    def replace(self, **changes: Any) -> Options:
        return dataclasses.replace(self, **changes)

    def tls(self) -> Any:
        """The TLS settings of every outbound connection (conformance/tls.py)."""
        from layers_kit.conformance.tls import TlsSettings

        return TlsSettings(self.ca_bundle, self.client_cert, self.client_key, self.insecure)

    def target(self) -> Any:
        """The `Target` the checks read (base_url and api_key must be set)."""
        from layers_kit.conformance.target import Target

        values = {f.name: getattr(self, f.name) for f in fields(Target) if f.name != "tls"}
        return Target(**values, tls=self.tls())

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `runner.run` (waivers apart: the caller loads `waive`)."""
        return {"only": list(self.only) or None, "profile": "quick" if self.quick else "default",
                "schemathesis": self.schemathesis,
                "schemathesis_examples": self.schemathesis_examples, "seed": self.seed,
                "jobs": self.jobs, "exclude_checks": list(self.exclude_checks),
                "fail_on": tuple(self.fail_on)}


FIELDS = {f.name: f for f in fields(Options)}
DEFAULTS = Options()
# Environment variables of the options that take one (the keys: `ps` never shows them).
ENV = {f.name: f.metadata["env"] for f in FIELDS.values() if f.metadata["env"]}


def flag(f: dataclasses.Field) -> str:
    """The option's command-line flag."""
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def pytest_flag(f: dataclasses.Field) -> str | None:
    """The option's pytest flag (`--layers-` and the command-line flag's name), or None."""
    given = f.metadata["pytest"]
    if given == NO_PYTEST:
        return None
    return given or "--layers-" + flag(f).removeprefix("--")


def _help(f: dataclasses.Field, text: str) -> str:
    extra = []
    if f.metadata["env"]:
        extra.append(f"or ${f.metadata['env']}, which keeps it off the command line")
    if f.default not in (None, (), True, False):
        extra.append(f"default {f.default:g}" if isinstance(f.default, float)
                     else f"default {f.default}")
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _kwargs(f: dataclasses.Field) -> dict[str, Any]:
    kwargs = dict(f.metadata["argparse"])
    if f.type in ("bool", bool) and "action" not in kwargs:
        kwargs["action"] = "store_true"
    return kwargs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `layers-conformance run`, in their groups. Nothing is defaulted here
    (an option not given is absent from the namespace): `resolve` applies the model's
    defaults, after the environment and a door's values."""
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for f in FIELDS.values():
        groups[f.metadata["group"]].add_argument(
            flag(f), dest=f.name, default=argparse.SUPPRESS, help=_help(f, f.metadata["help"]),
            **_kwargs(f))


def add_pytest_options(group: Any) -> None:
    """The pytest plugin's `--layers-...` options (a pytest OptionGroup); None when not given."""
    for f in FIELDS.values():
        name = pytest_flag(f)
        if name is None:
            continue
        text = f.metadata["pytest_help"] or f"{f.metadata['help']}; the kit's {flag(f)}"
        group.addoption(name, dest=f"layers_{f.name}", default=None, help=_help(f, text),
                        **_kwargs(f))


def _value(f: dataclasses.Field, value: Any) -> Any:
    return tuple(value) if isinstance(f.default, tuple) else value


def given_args(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line gave (parsed by a parser of `add_arguments`)."""
    return {name: _value(f, getattr(args, name)) for name, f in FIELDS.items()
            if hasattr(args, name)}


def given_pytest(getoption: Any) -> dict[str, Any]:
    """What pytest's command line gave; `getoption` is `config.getoption`."""
    given = {}
    for name, f in FIELDS.items():
        if pytest_flag(f) is not None:
            value = getoption(f"layers_{name}")
            if value is not None:
                given[name] = _value(f, value)
    return given


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """The values the environment gives (an empty variable gives nothing); a repeatable
    option's variable gives several values, separated by commas or white space."""
    values: dict[str, Any] = {}
    for name, var in ENV.items():
        if environ.get(var):
            values[name] = (tuple(re.split(r"[\s,]+", environ[var]))
                            if isinstance(FIELDS[name].default, tuple) else environ[var])
    return values


def resolve(given: Mapping[str, Any], environ: Mapping[str, str] | None = None,
            door: Mapping[str, Any] | None = None) -> Options:
    """The options: `given` (the command line), else `environ` (None: not read), else the
    `door`'s values (e.g. the bundled mock's), else the model's defaults."""
    values = {**(door or {}), **from_environ(environ or {}), **given}
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"not options of the kit: {', '.join(sorted(unknown))}")
    for name, value in values.items():  # an empty item ("k1," or --extra-api-key "") is none
        if isinstance(FIELDS[name].default, tuple):
            values[name] = tuple(v.strip() for v in value if v and v.strip())
    return Options(**values)
