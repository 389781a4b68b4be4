"""External tools a test needs (node, curl, chromium, the pinned npm tools).

On a developer's machine a missing tool skips the test with the reason. CI installs every tool
and sets LAYERS_REQUIRE_TOOLS=1, so there a missing tool fails the test instead of hiding it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _missing(what: str, how: str) -> None:
    message = f"{what} is missing ({how})"
    if os.environ.get("LAYERS_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{message}; LAYERS_REQUIRE_TOOLS=1 forbids skipping")
    pytest.skip(message)


def require_command(name: str, how: str | None = None) -> str:
    """The path of a command on PATH, or skip (fail in CI) with how to install it."""
    path = shutil.which(name)
    if path is None:
        _missing(f"`{name}`", how or f"apt-get install {name}")
    return path  # type: ignore[return-value]


def require_npm_tool(name: str) -> str:
    """A pinned npm tool from node_modules/.bin (installed by `npm ci`, which `make test` runs)."""
    require_command("node", "apt-get install nodejs npm")
    path = NODE_BIN / name
    if not path.exists():
        _missing(f"npm tool `{name}`", "run `npm ci` in the project's root")
    return str(path)


def require_chromium() -> str:
    """Debian's chromium, for Playwright's `executable_path`."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    _missing("`chromium`", "apt-get install chromium")
    return ""  # unreachable
