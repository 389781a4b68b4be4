"""The rules reference page, generated from the catalogue and the check registries.

    python -m layers_kit.conformance.catalogue [--out PATH]

writes `docs/reference/rules.md` (or PATH; `-` for standard output): for each rule id of
`layers_kit.contract.catalogue`, its statement, then every check that holds it, from the active
kit (`layers-conformance run`) and from the validating proxy (`layers-conformance proxy`), with
what the check sends, what fails it and the inputs that unlock it. The page is built from the
registries themselves, so it cannot drift from them; a test compares the committed page with
`render()`.

What a check sends and what fails it come from the check function's docstring:

    def r3_only_new_assets(ctx):
        '''Regenerates a completed container and reads it back when the job completes.

        Fails when an asset id listed before the regeneration is still listed.
        '''

the first paragraph (less any "Fails when" line) is what it sends, the paragraph that starts
with "Fails when" is what fails it. A check without a docstring is described by its title.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from layers_kit.contract.catalogue import (
    API_RULE,
    CATALOGUE,
    CLIENT_RULE,
    PRODUCT_SECTION,
    REGENERATE_RULE,
    Entry,
)

DEFAULT_OUT = Path("docs/reference/rules.md")
COMMAND = "python -m layers_kit.conformance.catalogue --out docs/reference/rules.md"
FAILS = "Fails when"

_HEADINGS = {
    REGENERATE_RULE: "Regenerate rules (R1-R12)",
    API_RULE: "API rules",
    PRODUCT_SECTION: "Product sections",
    CLIENT_RULE: "Client rules (C1-C6)",
}


@dataclass(frozen=True)
class Described:
    """One check as the page shows it, whichever registry it comes from."""

    rule: str
    tool: str  # "run", "proxy, server side", "proxy, client side", "run, Schemathesis phase"
    name: str
    title: str
    sends: str
    fails: str
    unlocks: str
    documented: bool


def describe(fn: Callable | None, title: str) -> tuple[str, str, bool]:
    """(what it sends, what fails it, whether a docstring said so) for one check function."""
    doc = inspect.getdoc(fn) if fn is not None else None
    if not doc:
        return title, "", False
    paragraphs = [" ".join(line.strip() for line in p.splitlines()) for p in doc.split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    fails = next((p for p in paragraphs if p.startswith(FAILS)), "")
    first = paragraphs[0] if paragraphs else ""
    if FAILS in first:  # "Sends this. Fails when that." in one paragraph
        first, _, rest = first.partition(FAILS)
        fails = fails or FAILS + rest
    sends = first.strip() or title
    fails = fails[len(FAILS):].strip() if fails else ""
    return sends, fails, True


def active_checks() -> list[Described]:
    from layers_kit.conformance.registry import NEEDS, all_checks

    out = []
    for c in all_checks():
        sends, fails, documented = describe(c.fn, c.title)
        unlocks = "; ".join(f"`{n}` ({NEEDS.get(n, 'no option provides it')})"
                            for n in c.needs) \
            or "nothing beyond `--base-url` and `--api-key`"
        if c.exclusive:
            unlocks += ("; runs alone (it changes the project's review policy and restores "
                        "it), or alongside the others in --policy-project-id")
        if c.judge:
            unlocks += "; runs last and judges every response the run received"
        out.append(Described(c.rule, "run", c.name, c.title, sends, fails, unlocks, documented))
    return out


def proxy_checks() -> list[Described]:
    from layers_kit.conformance.proxy.checks import CHECKS

    out = []
    for c in CHECKS:
        sends, fails, documented = describe(c.fn, c.title)
        unlocks = ("judged on requests of a known operation that carry a key and match the "
                   "contract" if c.needs_valid_request else "judged on every exchange")
        out.append(Described(c.rule, f"proxy, {c.side} side", c.name, c.title, sends, fails,
                             unlocks, documented))
    return out


def schemathesis_phase() -> list[Described]:
    """The Schemathesis phase of `run`, reported under SCHEMA though it is no registry check."""
    from layers_kit.conformance.runner import SCHEMA_TITLE

    return [Described("SCHEMA", "run, Schemathesis phase", "schemathesis", SCHEMA_TITLE,
                      "property-based and stateful requests generated from openapi.yaml, "
                      "with every Schemathesis check; a fresh Idempotency-Key on every "
                      "request, 429s waited out by Retry-After within the time budget, "
                      "scheduleContent dated a year ahead, and (with --project-id) an "
                      "approved container, a job and a post of its own so that every "
                      "operation can reach its 2xx", "a response Schemathesis finds outside "
                      "the contract (status, headers or body), e.g. a schema-breaking body "
                      "accepted; inconclusive (never failed) when the target stopped "
                      "answering, the budget ran out, a write operation never got a 2xx, an "
                      "unintended 409 IDEMPOTENCY_CONFLICT came back, or Schemathesis warned "
                      "that logic went untested",
                      "nothing beyond `--base-url` and `--api-key` (`--project-id` gives it "
                      "a container of its own); skipped with `--no-schemathesis`", True)]


def all_described() -> list[Described]:
    return [*active_checks(), *schemathesis_phase(), *proxy_checks()]


def undocumented() -> list[Described]:
    """The registry checks whose function has no docstring (described by their title)."""
    return [d for d in [*active_checks(), *proxy_checks()] if not d.documented]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _entry(entry: Entry, checks: list[Described]) -> list[str]:
    out = ["", f"### {entry.id}: {entry.title}", "", entry.statement, ""]
    if entry.family == PRODUCT_SECTION:
        out.append("A part of the product, not a rule of the API: no check holds it.")
        return out
    if entry.family == CLIENT_RULE:
        out += ["Judged from a client's calls over time by the mock's client report "
                "(`GET /__mock/client-report`, `layers_mock.assert_client_behaves()`) and, on "
                "live traffic, by the validating proxy (client side), with one judge "
                "(`layers_kit.contract.behaviour`).", ""]
    if not checks:
        out.append(f"No check holds it: {entry.unchecked or 'no reason given'}.")
        return out
    out += [f"Checks ({len(checks)}):", ""]
    for d in checks:
        out.append(f"- **`{d.name}`** ({d.tool}): {d.title}")
        if d.documented:
            out.append(f"  - sends: {d.sends}")
            out.append(f"  - fails when: {d.fails or 'the answer breaks the rule as titled'}")
        else:
            out.append("  - sends and fails when: not documented yet; the title says what it "
                       "holds")
        out.append(f"  - inputs: {d.unlocks}")
    return out


def render() -> str:
    """The reference page, as Markdown."""
    by_rule: dict[str, list[Described]] = {}
    for d in all_described():
        by_rule.setdefault(d.rule, []).append(d)
    out = ["# Rules and the checks that hold them", "",
           "<!-- Generated; do not edit. Regenerate with: " + COMMAND + " -->", "",
           "Every rule id that the code, the conformance reports and the proxy's reports use "
           "is defined here. The statements come from `layers_kit.contract.catalogue`, the "
           "checks from the registries of `layers-conformance run` "
           "(`layers_kit.conformance.registry`) and of `layers-conformance proxy` "
           "(`layers_kit.conformance.proxy.checks`). Four families:", "",
           "- **regenerate rule** (R1-R12): what `regenerateContent` does;",
           "- **API rule**: what every operation does (D2 operations, D5 errors, D6 "
           "idempotency, D7 jobs and time, D8 auth and tenancy, D16 approval and "
           "scheduling, SCHEMA conformance to `openapi.yaml`);",
           "- **client rule** (C1-C6): how a well-behaved client acts over time;",
           "- **product section**: a part of this product that code cites, not a rule of the "
           "API.", "",
           "| id | family | title | checks (run) | checks (proxy) |", "|---|---|---|---|---|"]
    for entry in CATALOGUE.values():
        checks = by_rule.get(entry.id, [])
        run = sum(1 for d in checks if d.tool.startswith("run"))
        proxy = len(checks) - run
        out.append(f"| [{entry.id}](#{_anchor(entry)}) | {entry.family} | "
                   f"{_cell(entry.title)} | {run} | {proxy} |")
    for family in (REGENERATE_RULE, API_RULE, CLIENT_RULE, PRODUCT_SECTION):
        out += ["", f"## {_HEADINGS[family]}"]
        for entry in CATALOGUE.values():
            if entry.family == family:
                out += _entry(entry, by_rule.get(entry.id, []))
    from layers_kit.conformance import promises

    out += promises.render()
    unknown = sorted(set(by_rule) - set(CATALOGUE))
    if unknown:
        out += ["", "## Checks under ids the catalogue does not define", ""]
        out += [f"- `{d.name}` ({d.tool}) under {rule}" for rule in unknown
                for d in by_rule[rule]]
    return "\n".join(out) + "\n"


def _anchor(entry: Entry) -> str:
    """GitHub's anchor of the entry's heading."""
    text = f"{entry.id}: {entry.title}".lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m layers_kit.conformance.catalogue",
        description="Write the rules reference page (every rule id and the checks that "
                    "hold it).")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help=f"where to write it (default {DEFAULT_OUT}; - for stdout)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    page = render()
    if args.out == "-":
        sys.stdout.write(page)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
