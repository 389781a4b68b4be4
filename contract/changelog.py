"""The contract's changelog (`contract/CHANGELOG.md`): one `## <version>` section per info.version.

Each section says what partners see change, under `### Added`, `### Changed`, `### Deprecated`
(and `### Removed` for a new major version). Parsed just enough to find a version's section;
`skeleton` writes the empty section `layers-contract bump` starts a version with.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CHANGELOG = Path(__file__).parent / "CHANGELOG.md"
REQUIRED_KINDS = ("Added", "Changed", "Deprecated")  # what the gate wants in every section
_HEADING = re.compile(r"^## \[?v?(?P<version>\d+\.\d+\.\d+[^\]\s]*)\]?", re.MULTILINE)


def _path(path: Path | None) -> Path:
    return CHANGELOG if path is None else path


def shown(path: Path) -> str:
    """A path as a person should read it in a message: relative to the current folder when
    below it (`contract/CHANGELOG.md` from a checkout's root), else absolute."""
    path = Path(path).resolve()
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def sections(text: str) -> dict[str, str]:
    """version -> the section's body (without its heading)."""
    found = list(_HEADING.finditer(text))
    out: dict[str, str] = {}
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        out[match.group("version")] = text[match.end():end].strip()
    return out


def section(version: str, path: Path | None = None) -> str | None:
    return sections(_path(path).read_text(encoding="utf-8")).get(version)


def kinds_of(body: str) -> list[str]:
    """The `### ...` headings of a section, in order."""
    return re.findall(r"^### (\w+)", body, re.MULTILINE)


def problems(version: str, path: Path | None = None) -> list[str]:
    """What the release gate refuses in `version`'s section (tests/test_contract_release.py):
    no section, or one without `### Added`, `### Changed` and `### Deprecated`."""
    path = _path(path)
    if not path.is_file():
        return [f"{shown(path)} does not exist"]
    body = section(version, path)
    if body is None:
        return [f"{shown(path)} has no section for {version}: write `## {version}` with "
                f"`### Added`, `### Changed` and `### Deprecated` first "
                f"(`layers-contract bump` writes them)"]
    missing = [k for k in REQUIRED_KINDS if k not in kinds_of(body)]
    if missing:
        return [f"{shown(path)}: the section for {version} lacks "
                + ", ".join(f"`### {k}`" for k in missing)
                + " (write `- nothing` under a heading with nothing to say)"]
    return []


def skeleton(version: str, *, removed: bool = False) -> str:
    kinds = (*REQUIRED_KINDS, "Removed") if removed else REQUIRED_KINDS
    return f"## {version}\n\n" + "".join(f"### {k}\n\n" for k in kinds)


def add_skeleton(version: str, path: Path | None = None, *, removed: bool = False) -> bool:
    """Put an empty section for `version` above the newest one; False when it already has one."""
    path = _path(path)
    text = path.read_text(encoding="utf-8")
    if version in sections(text):
        return False
    first = _HEADING.search(text)
    at = first.start() if first else len(text)
    head = text[:at] if first else text.rstrip("\n") + "\n\n"
    path.write_text(head + skeleton(version, removed=removed) + text[at:], encoding="utf-8")
    return True


def rename(old: str, new: str, path: Path | None = None, *, removed: bool = False) -> None:
    """Give the (unreleased) section of `old` the heading of `new`; add `### Removed` for a
    new major version when it has none."""
    path = _path(path)
    text = path.read_text(encoding="utf-8")
    heading = re.compile(rf"^## \[?v?{re.escape(old)}\]?[^\n]*$", re.MULTILINE)
    match = heading.search(text)
    if match is None:
        raise ValueError(f"{shown(path)} has no section for {old}")
    text = text[:match.start()] + f"## {new}" + text[match.end():]
    if removed and "Removed" not in kinds_of(sections(text)[new]):
        following = [m.start() for m in _HEADING.finditer(text) if m.start() > match.start()]
        at = following[0] if following else len(text)
        text = text[:at].rstrip("\n") + "\n\n### Removed\n\n" + text[at:]
    path.write_text(text, encoding="utf-8")
