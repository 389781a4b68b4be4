"""The installed distribution's version, for `--version` (pyproject.toml is its one source)."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

DISTRIBUTION = "layers-regenerate-kit"


def version() -> str:
    try:
        return _version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
