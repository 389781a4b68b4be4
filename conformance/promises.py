"""The inventory of the contract's promises (contract/promises.yaml) and its guard.

    python -m layers_kit.conformance.promises [--missing]

A *promise sentence* is found mechanically, so that a new one cannot slip in unnoticed:

- the texts walked: `info.description`, the `description` of every operation, the
  `description` of every code in `x-error-codes` (the error table), and every enum of
  `components.schemas` (each enum is one promise: its values are closed within v1);
- a text is cut into sentences: headings (`#`) are dropped, each bullet (`- `) and each table
  row (`| ... |`, less the header and rule rows) is an item of its own, and paragraphs are cut
  after `.`, `!` or `?` followed by a space and a capital, a backtick, a quote or `(`;
- a sentence is a promise when it names an HTTP status (a three-digit number from 100 to 599),
  an error code of `x-error-codes`, or one of `PROMISE_WORDS` (answers, returns, never, always,
  must, keeps, changes, replaces, is, are, ... see below): in practice every sentence but a
  title-like one; every table row, every error code and every enum is one.

Each promise has an entry in contract/promises.yaml: its `id`, `where` (the text it is in),
the exact `quote` (whitespace folded), and one of `checks` (the kit's checks that hold it, by
name), `schema` (why the Schemathesis phase alone proves it) or `not_observable` (why the API
cannot show it) with `instead` (what a target's owner can do). `problems()` lists every
promise sentence without an entry, every entry whose quote is no longer in its text (the
promise changed under it), and every entry naming a check that does not exist;
tests/test_promises.py fails on any. `--missing` prints the skeleton entries to add.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from layers_kit.contract import spec

INVENTORY = Path(__file__).resolve().parents[1] / "contract" / "promises.yaml"
KINDS = ("check", "schema", "not observable")
PROMISE_WORDS = (
    "answer", "answers", "return", "returns", "never", "always", "must", "keep", "keeps",
    "kept", "stay", "stays", "remain", "remains", "become", "becomes", "change", "changes",
    "replace", "replaces", "replaced", "release", "released", "reserve", "reserved", "cost",
    "costs", "carries", "carry", "names", "lists", "count", "counts", "puts", "sets",
    "requires", "required", "accepts", "accepted", "closed", "ignore", "untouched", "equals",
    "only", "every", "each", "no", "not", "cannot", "is", "are", "means", "pass", "passes",
    "moves", "schedules", "shows", "shown", "start", "starts", "runs", "scoped", "swapped",
    "name", "left", "stop", "gets", "belongs", "may",
)
_WORDS = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in PROMISE_WORDS) + r")\b",
                    re.IGNORECASE)
_STATUS = re.compile(r"\b[1-5]\d\d\b")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"(*])")


def fold(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Sentence:
    where: str
    text: str


def _items(description: str) -> Iterator[str]:
    """Bullets, table rows and sentences of a Markdown description."""
    paragraph: list[str] = []

    def flush() -> Iterator[str]:
        if paragraph:
            yield from _SPLIT.split(fold(" ".join(paragraph)))
            paragraph.clear()

    for raw in description.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            yield from flush()
        elif line.startswith("|"):
            yield from flush()
            if not re.fullmatch(r"[|\s:-]+", line) and not line.startswith("| code |"):
                yield fold(line)
        elif line.startswith("- "):
            yield from flush()
            paragraph.append(line[2:])
        elif line.startswith("**") and line.endswith("**"):
            yield from flush()
        else:
            paragraph.append(line)
    yield from flush()


def _texts(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "info.description", doc["info"].get("description") or ""
    for item in (doc.get("paths") or {}).values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId"):
                yield op["operationId"], op.get("description") or ""
    for code, entry in (doc.get("x-error-codes") or {}).items():
        statuses = [entry.get("status"), *(entry.get("alsoStatuses") or [])]
        yield f"x-error-codes.{code}", (f"{code} answers {', '.join(map(str, statuses))}: "
                                        f"{entry.get('description', '')}")
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        if isinstance(schema, dict) and len(schema.get("enum") or []) > 1:
            yield f"enum.{name}", f"{name} is one of: " + ", ".join(map(str, schema["enum"]))


def is_promise(text: str, codes: Iterable[str]) -> bool:
    return bool(_STATUS.search(text) or _WORDS.search(text) or
                any(re.search(rf"\b{c}\b", text) for c in codes) or text.startswith("|"))


def promise_sentences(doc: dict[str, Any] | None = None) -> list[Sentence]:
    """Every promise sentence of the contract, in document order."""
    doc = doc if doc is not None else spec.load_spec()
    codes = list(doc.get("x-error-codes") or {})
    out = []
    for where, text in _texts(doc):
        if where.startswith(("x-error-codes.", "enum.")):  # each one promise, whole
            out.append(Sentence(where, text))
            continue
        out += [Sentence(where, s) for s in _items(text) if is_promise(s, codes)]
    return out


@cache
def inventory(path: Path = INVENTORY) -> tuple[dict[str, Any], ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return tuple(data.get("promises") or [])


def kind(entry: dict[str, Any]) -> str:
    if entry.get("checks"):
        return "check"
    if entry.get("schema"):
        return "schema"
    if entry.get("not_observable"):
        return "not observable"
    return "none"


def problems(doc: dict[str, Any] | None = None,
             entries: Iterable[dict[str, Any]] | None = None,
             check_names: Iterable[str] | None = None) -> list[str]:
    """What is wrong with the inventory against the contract: empty when every promise has
    one good entry."""
    doc = doc if doc is not None else spec.load_spec()
    entries = list(entries if entries is not None else inventory())
    if check_names is None:
        from layers_kit.conformance.registry import all_checks

        check_names = [c.name for c in all_checks()] + ["schemathesis"]
    names = set(check_names)
    texts = {where: fold(text) for where, text in _texts(doc)}
    out = []
    ids = Counter(e.get("id") for e in entries)
    out += [f"promise id {i!r} is used {n} times" for i, n in ids.items() if n > 1]
    covered = {(e.get("where"), fold(e.get("quote") or "")) for e in entries}
    for s in promise_sentences(doc):
        if (s.where, fold(s.text)) not in covered:
            out.append(f"no entry for the promise in {s.where}: {s.text!r}")
    for e in entries:
        quote = fold(e.get("quote") or "")
        if not quote or quote not in texts.get(e.get("where"), ""):
            out.append(f"{e.get('id')}: its quote is no longer in {e.get('where')} (the "
                       f"promise changed or moved): {quote[:120]!r}")
        k = kind(e)
        if k == "none" or sum(bool(e.get(f)) for f in ("checks", "schema",
                                                       "not_observable")) != 1:
            out.append(f"{e.get('id')}: needs exactly one of checks, schema, not_observable")
        if k == "not observable" and not e.get("instead"):
            out.append(f"{e.get('id')}: not observable, but no `instead` for the owner")
        for name in e.get("checks") or []:
            if name not in names:
                out.append(f"{e.get('id')}: no check is named {name!r}")
    return out


def coverage(entries: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The coverage figure: promises held by a check, by the schema phase alone, and not
    observable through the API (with the list and the reasons)."""
    entries = list(entries if entries is not None else inventory())
    counts = Counter(kind(e) for e in entries)
    return {"promises": len(entries), "check": counts["check"], "schema": counts["schema"],
            "notObservable": counts["not observable"],
            "notObservableList": [{"id": e["id"], "where": e["where"], "quote": e["quote"],
                                   "reason": e["not_observable"], "instead": e["instead"]}
                                  for e in entries if kind(e) == "not observable"]}


def coverage_line(entries: Iterable[dict[str, Any]] | None = None) -> str:
    c = coverage(entries)
    return (f"{c['promises']} promises of openapi.yaml: {c['check']} held by a check, "
            f"{c['schema']} by the schema phase, {c['notObservable']} not observable through "
            "the API")


def render() -> list[str]:
    """The inventory as Markdown lines, for the rules reference page."""
    entries = inventory()
    out = ["", "## Promises of the contract", "",
           "Every sentence of `openapi.yaml` that promises behaviour (found mechanically: see "
           "`layers_kit.conformance.promises`), and what holds it: a check of the kit, the "
           "Schemathesis phase (`schema`), or nothing the API can show (`not observable`, with "
           "what a target's owner can do instead). The inventory is `contract/promises.yaml`; "
           "a test fails when a promise has no entry or its text changed under one.", "",
           coverage_line(entries) + ".", "",
           "| id | where | promise | held by |", "|---|---|---|---|"]
    for e in entries:
        k = kind(e)
        if k == "check":
            held = ", ".join(f"`{n}`" for n in e["checks"])
        elif k == "schema":
            held = f"schema: {e['schema']}"
        else:
            held = f"not observable: {e['not_observable']} Instead: {e['instead']}"
        cell = lambda t: fold(str(t)).replace("|", "\\|")  # noqa: E731
        out.append(f"| {e['id']} | {e['where']} | {cell(e['quote'])} | {cell(held)} |")
    return out


def skeleton(doc: dict[str, Any] | None = None) -> str:
    """YAML entries for the promise sentences that have none (to fill in)."""
    doc = doc if doc is not None else spec.load_spec()
    covered = {(e.get("where"), fold(e.get("quote") or "")) for e in inventory()}
    missing = [s for s in promise_sentences(doc) if (s.where, fold(s.text)) not in covered]
    rows = [{"id": f"{s.where}.{i}", "where": s.where, "quote": s.text, "checks": []}
            for i, s in enumerate(missing, 1)]
    return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True, width=100)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layers_kit.conformance.promises",
                                     description="Check the inventory of the contract's "
                                                 "promises (contract/promises.yaml).")
    parser.add_argument("--missing", action="store_true",
                        help="print skeleton entries for promises without one")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.missing:
        sys.stdout.write(skeleton())
        return 0
    found = problems()
    for p in found:
        print(p)
    print(coverage_line())
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
