"""The contract's changelog (`contract/CHANGELOG.md`): one `## <version>` section per info.version.

Each section says what partners see change, under `### Added`, `### Changed`, `### Deprecated`
(and `### Removed` for a new major version). Parsed just enough to find a version's section.
"""

from __future__ import annotations

import re
from pathlib import Path

CHANGELOG = Path(__file__).parent / "CHANGELOG.md"
_HEADING = re.compile(r"^## \[?v?(?P<version>\d+\.\d+\.\d+[^\]\s]*)\]?", re.MULTILINE)


def sections(text: str) -> dict[str, str]:
    """version -> the section's body (without its heading)."""
    found = list(_HEADING.finditer(text))
    out: dict[str, str] = {}
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        out[match.group("version")] = text[match.end():end].strip()
    return out


def section(version: str, path: Path = CHANGELOG) -> str | None:
    return sections(path.read_text(encoding="utf-8")).get(version)


def kinds_of(body: str) -> list[str]:
    """The `### ...` headings of a section, in order."""
    return re.findall(r"^### (\w+)", body, re.MULTILINE)
