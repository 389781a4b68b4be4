"""Released versions of the contract, kept in the repository: `contract/releases/<version>/`
(this package holds the snapshots beside its code).

A release is a snapshot of `openapi.yaml` as partners received it. `make test` diffs the current
contract against the latest one (the D12 gate); `layers-contract release` takes the snapshot of
the current info.version once its changelog section is written.
"""

from __future__ import annotations

import re
from pathlib import Path

from layers_kit.contract import changelog
from layers_kit.contract.document import Document, load

RELEASES = Path(__file__).parent  # the snapshots live beside this module


def _key(version: str) -> tuple:
    parts = re.findall(r"\d+", version)
    return tuple(int(p) for p in parts[:3])


def versions(root: Path = RELEASES) -> list[str]:
    """Released versions, oldest first."""
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if (p / "openapi.yaml").is_file()]
    return sorted(found, key=_key)


def latest(root: Path = RELEASES) -> Path | None:
    """The snapshot of the newest release, or None before the first one."""
    found = versions(root)
    return root / found[-1] / "openapi.yaml" if found else None


def snapshot(spec_file: Path, *, root: Path = RELEASES, force: bool = False) -> Path:
    """Copy `spec_file` to `<root>/<info.version>/openapi.yaml`.

    Refuses when the version has no changelog section, and when a different snapshot of the
    same version exists (a released version never changes) unless `force` (before it was
    published, e.g. to take the final text of an unpublished version).
    """
    doc: Document = load(spec_file)
    if changelog.section(doc.version) is None:
        raise ValueError(f"CHANGELOG.md has no section for {doc.version}: write it first")
    target = root / doc.version / "openapi.yaml"
    data = spec_file.read_bytes()
    if target.exists() and target.read_bytes() != data and not force:
        raise ValueError(f"release {doc.version} exists with other content; a released version "
                         f"never changes: raise info.version (or --force before publishing)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
