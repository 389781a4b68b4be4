"""Versions for `--version`: the installed distribution's (pyproject.toml is its one source) and
the contract's (`info.version` of the openapi.yaml the commands serve and check).

    layers-mock 0.1.0 (contract 1.2.0)

The contract's version is read with a scan of the file's `info:` block, not a YAML parse, so
that `--version` (and every start of the mock, which builds its parser) stays cheap.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path

DISTRIBUTION = "layers-regenerate-kit"
_INFO_VERSION = re.compile(r"^info:[ \t]*\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+version:[ \t]*"
                           r"['\"]?(?P<version>[^'\"\s#]+)", re.MULTILINE)


def version() -> str:
    try:
        return _version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def contract_version(spec: Path | None = None) -> str:
    """`info.version` of `spec` (default: the contract the commands use: the checkout's
    openapi.yaml, else the packaged copy), or "unknown" when it cannot be read."""
    try:
        if spec is None:
            from layers_kit.contract.spec import spec_path

            spec = spec_path()
        found = _INFO_VERSION.search(spec.read_text(encoding="utf-8"))
    except (OSError, ImportError, ValueError):
        return "unknown"
    return found.group("version") if found else "unknown"


def version_line() -> str:
    """What follows the program's name in `--version`: `0.1.0 (contract 1.2.0)`."""
    return f"{version()} (contract {contract_version()})"
