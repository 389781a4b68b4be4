"""`layers-contract`: publish, diff, lint and release the contract (D12).

    layers-contract publish --out DIR         the files partners get for the current version
    layers-contract diff BASE NEW [--format text|json|junit] [--output FILE]
                                              exit 1 on a breaking change unless NEW's major rose
    layers-contract lint                      Spectral and Redocly; exit 1 unless all clean
    layers-contract bump major|minor|patch    raise info.version in openapi.yaml and write the
                                              version's empty section in contract/CHANGELOG.md
    layers-contract release [--force]         snapshot the contract: contract/releases/<version>/,
                                              refusing what the release gate refuses
    layers-contract version                   the contract's info.version

BASE or NEW may be `latest` (the newest release kept in contract/releases) or `current` (the
contract the mock serves). Exit 2: a usage error, an unreadable document, a missing tool.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from layers_kit.contract import changelog, page, publish, releases, report
from layers_kit.contract import lint as lint_mod
from layers_kit.contract.diff import diff
from layers_kit.contract.document import ContractError, load
from layers_kit.contract.version import version_line


def _current() -> Path:
    from layers_kit.contract.spec import (
        spec_path,  # the same rule the mock uses: the checkout's, else packaged
    )

    return spec_path()


def _resolve(name: str) -> Path:
    if name == "current":
        return _current()
    if name == "latest":
        found = releases.latest()
        if found is None:
            raise ContractError("no release is kept in contract/releases yet")
        return found
    return Path(name)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="layers-contract", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {version_line()}")
    sub = p.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="write the release files of the current contract")
    pub.add_argument("--out", type=Path, required=True, help="folder to write into")
    pub.add_argument("--spec", default="current", help="the contract (default: current)")
    d = sub.add_parser("diff", help="classify every change from BASE to NEW")
    d.add_argument("base", help="BASE: a file, `latest` or `current`")
    d.add_argument("new", help="NEW: a file, `latest` or `current`")
    d.add_argument("--format", choices=sorted(report.FORMATS), default="text")
    d.add_argument("--output", type=Path, help="write the report here (default: stdout)")
    d.add_argument("--breaking-only", action="store_true", help="text: list breaking changes only")
    li = sub.add_parser("lint", help="run Spectral and Redocly with the project's rulesets")
    li.add_argument("--spec", default="current")
    r = sub.add_parser(
        "release", help="snapshot the contract as its info.version's release",
        description="Snapshot openapi.yaml into contract/releases/<info.version>/. Refused, with "
        "nothing written, when the release gate (make test) would fail: the version needs its "
        "section in contract/CHANGELOG.md with Added, Changed and Deprecated; no breaking "
        "change since the release before it unless the major version rose; a released version "
        "never changes; and only a checkout is written to, never an installed package.")
    r.add_argument("--spec", default="current")
    r.add_argument("--force", action="store_true",
                   help="replace an existing snapshot of the same version (before publishing it)")
    b = sub.add_parser(
        "bump", help="raise info.version and write the changelog section to fill",
        description="Raise info.version in openapi.yaml (only that line changes) and write the "
        "new version's empty section in contract/CHANGELOG.md (Added, Changed, Deprecated; "
        "Removed too for a major). From a version not yet released, counts from the latest "
        "release and renames that version's section.")
    b.add_argument("part", choices=releases.PARTS, help="which part of the version to raise")
    v = sub.add_parser("version", help="print the contract's info.version")
    v.add_argument("--spec", default="current")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ContractError, page.PageUnavailable, lint_mod.ToolMissing, ValueError) as err:
        print(f"layers-contract: {err}", file=sys.stderr)
        return 2


def _publish(args: argparse.Namespace) -> int:
    for written in publish.publish(_resolve(args.spec), args.out):
        print(written)
    return 0


def _diff(args: argparse.Namespace) -> int:
    result = diff(load(_resolve(args.base)), load(_resolve(args.new)))
    if args.format == "text":
        out = report.as_text(result, breaking_only=args.breaking_only)
    else:
        out = report.FORMATS[args.format](result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(out, encoding="utf-8")
        print(report.verdict(result))
    else:
        sys.stdout.write(out)
    return 1 if result.gate_fails else 0


def _lint(args: argparse.Namespace) -> int:
    clean = True
    for res in lint_mod.lint(_resolve(args.spec)):
        print(f"{res.tool} ({res.ruleset}): {res.errors} error(s), {res.warnings} warning(s)")
        if res.output:
            print(res.output)
        clean &= res.clean
    return 0 if clean else 1


def _release(args: argparse.Namespace) -> int:
    target = releases.snapshot(_resolve(args.spec), force=args.force)
    print(f"released {target}")
    return 0


def _bump(args: argparse.Namespace) -> int:
    releases.require_checkout(what="bump")
    spec = _current()
    old, new = releases.bump(spec, args.part)
    if old == new:
        print(f"info.version is already {new}")
        return 0
    print(f"{changelog.shown(spec)}: info.version {old} -> {new}")
    print(f"{changelog.shown(changelog.CHANGELOG)}: write what partners see change under "
          f"`## {new}`, then `layers-contract release`")
    return 0


def _version(args: argparse.Namespace) -> int:
    print(load(_resolve(args.spec)).version)
    return 0


_COMMANDS = {"publish": _publish, "diff": _diff, "lint": _lint, "release": _release,
             "bump": _bump, "version": _version}
