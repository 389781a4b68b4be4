"""Released versions of the contract, kept in the repository: `contract/releases/<version>/`
(this package holds the snapshots beside its code).

A release is a snapshot of `openapi.yaml` as partners received it. `make test` diffs the current
contract against the latest one (the D12 gate, tests/test_contract_release.py);
`layers-contract release` takes the snapshot of the current info.version, and refuses exactly
what that gate refuses (`problems`), so whatever it writes passes the gate:

- the version's section in `contract/CHANGELOG.md`, with Added, Changed and Deprecated;
- no breaking change against the release before it unless the major version rose;
- a released version never changes (unless `force`, before it was published);
- and it writes only into a checkout: run from an installed package, this folder is inside
  site-packages, where a snapshot would be lost (and would be no release).
"""

from __future__ import annotations

import re
from pathlib import Path

from layers_kit.contract import changelog
from layers_kit.contract.document import Document, load

RELEASES = Path(__file__).parent  # the snapshots live beside this module


class ReleaseRefused(ValueError):
    """The release (or bump) would break the gate, or would write outside a checkout."""


def _root(root: Path | None) -> Path:
    return RELEASES if root is None else root


def _key(version: str) -> tuple:
    parts = re.findall(r"\d+", version)
    return tuple(int(p) for p in parts[:3])


def versions(root: Path | None = None) -> list[str]:
    """Released versions, oldest first."""
    root = _root(root)
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if (p / "openapi.yaml").is_file()]
    return sorted(found, key=_key)


def latest(root: Path | None = None) -> Path | None:
    """The snapshot of the newest release, or None before the first one."""
    root = _root(root)
    found = versions(root)
    return root / found[-1] / "openapi.yaml" if found else None


def checkout_of(root: Path | None = None) -> Path | None:
    """The repository checkout `root` belongs to (`<checkout>/contract/releases`), or None when
    it is not in one (an installed wheel: `site-packages/layers_kit/contract/releases`)."""
    root = _root(root).resolve()
    top = root.parent.parent
    if root.parent.name == "contract" and all(
            (top / name).is_file() for name in ("pyproject.toml", "setup.py", "openapi.yaml")):
        return top
    return None


def require_checkout(root: Path | None = None, *, what: str = "release") -> Path:
    top = checkout_of(root)
    if top is None:
        raise ReleaseRefused(
            f"`layers-contract {what}` writes into a checkout of the contract's repository, and "
            f"this one runs from an installed package: it would have written into "
            f"{_root(root).resolve()}, inside the installation, where no release is kept. "
            f"Run it from the checkout (`make {what}`, or its .venv/bin/layers-contract)")
    return top


def previous(version: str, root: Path | None = None) -> str | None:
    """The newest release below `version` (what the gate diffs it against)."""
    below = [v for v in versions(root) if _key(v) < _key(version)]
    return below[-1] if below else None


def problems(spec_file: Path, *, root: Path | None = None, changelog_path: Path | None = None,
             force: bool = False) -> list[str]:
    """Everything the gate (tests/test_contract_release.py) would refuse in releasing
    `spec_file`; empty when the release is sound."""
    from layers_kit.contract.diff import diff
    from layers_kit.contract.report import as_text

    root = _root(root)
    doc: Document = load(spec_file)
    found = changelog.problems(doc.version, changelog_path)
    newest = versions(root)[-1] if versions(root) else None
    if newest is not None and _key(doc.version) < _key(newest) and doc.version not in versions(
            root):
        found.append(f"{doc.version} is below the latest release, {newest}: the gate diffs "
                     f"openapi.yaml against the latest release; raise info.version "
                     f"(`layers-contract bump`)")
    before = previous(doc.version, root)
    if before is not None:
        result = diff(load(root / before / "openapi.yaml"), doc)
        if result.gate_fails:
            found.append(
                f"{len(result.breaking)} breaking change(s) since {before} within major version "
                f"{result.base_major}: raise the major version (`layers-contract bump major`) or "
                f"undo them\n" + as_text(result, breaking_only=True).rstrip())
    target = root / doc.version / "openapi.yaml"
    if target.exists() and target.read_bytes() != spec_file.read_bytes() and not force:
        found.append(f"release {doc.version} exists with other content ({target}); a released "
                     f"version never changes: raise info.version (`layers-contract bump`), or "
                     f"--force before it was published")
    return found


def snapshot(spec_file: Path, *, root: Path | None = None, force: bool = False,
             changelog_path: Path | None = None) -> Path:
    """Copy `spec_file` to `<root>/<info.version>/openapi.yaml`, once `problems` finds none.

    Refuses outside a checkout (the default root of an installed package), when the version's
    changelog section is missing or incomplete, on a breaking change without a major version,
    and when a different snapshot of the same version exists (a released version never changes)
    unless `force` (before it was published, e.g. to take the final text of an unpublished
    version).
    """
    if root is None:
        require_checkout(root, what="release")
    root = _root(root)
    found = problems(spec_file, root=root, changelog_path=changelog_path, force=force)
    if found:
        raise ReleaseRefused("release refused:\n" + "\n".join(f"- {p}" for p in found))
    doc = load(spec_file)
    target = root / doc.version / "openapi.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(spec_file.read_bytes())
    return target


# -- bump ----------------------------------------------------------------------------------

_INFO_VERSION = re.compile(r"(?P<head>^info:[ \t]*\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+version:[ \t]*)"
                           r"(?P<quote>['\"]?)(?P<version>\d+\.\d+\.\d+)(?P=quote)",
                           re.MULTILINE)
PARTS = ("major", "minor", "patch")


def bumped(version: str, part: str) -> str:
    major, minor, patch = _key(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValueError(f"bump what? {part!r} (one of {', '.join(PARTS)})")


def bump(spec_file: Path, part: str, *, changelog_path: Path | None = None,
         root: Path | None = None) -> tuple[str, str]:
    """Raise `info.version` of `spec_file` in place (only that line changes) and give the new
    version its changelog section: an empty one (Added, Changed, Deprecated; Removed too for a
    major), or, when the current version was never released, that version's section renamed
    (the bump is then counted from the latest release: minor, then major, gives 2.0.0, not
    2.1.0). Returns (old, new). Refuses outside a checkout."""
    if root is None and changelog_path is None:
        require_checkout(root, what="bump")
    text = spec_file.read_text(encoding="utf-8")
    found = _INFO_VERSION.search(text)
    if found is None:
        raise ReleaseRefused(f"{changelog.shown(spec_file)}: no `info.version` (x.y.z) found")
    old = found.group("version")
    kept = versions(root)
    unreleased = bool(kept) and old not in kept and _key(old) > _key(kept[-1])
    new = bumped(kept[-1] if unreleased else old, part)
    if new == old:
        return old, new
    spec_file.write_text(text[:found.start("version")] + new + text[found.end("version"):],
                         encoding="utf-8")
    path = changelog_path or changelog.CHANGELOG
    if unreleased and changelog.section(old, path) is not None \
            and changelog.section(new, path) is None:
        changelog.rename(old, new, path, removed=part == "major")
    else:
        changelog.add_skeleton(new, path, removed=part == "major")
    return old, new
