"""Every rule id the project uses is defined in the rule catalogue (contract/catalogue.py).

The ids are cited in code and comments (mock/, conformance/, contract/, openapi.yaml), in the
tests, and in the reports (each check of the kit and of the validating proxy reports under its
rule id). A reader meets them everywhere, so each must have a title and a statement here; and
each rule of the API must be held by a check, or say why none holds it. The rules reference
page (docs/reference/rules.md) is generated from the same catalogue and registries, and must
not drift from them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from layers_kit.contract import catalogue
from layers_kit.contract.catalogue import (
    API_RULE,
    CATALOGUE,
    FAMILIES,
    PRODUCT_SECTION,
    REGENERATE_RULE,
)

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("mock", "conformance", "contract", "tests")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".toml", ".ts", ".json", ".txt"}
SKIPPED_DIRS = {"__pycache__", "node_modules", ".pytest_cache"}
# This file is not scanned: it names undefined and lookalike ids on purpose, as test data.
SELF = Path(__file__).resolve()

# Anything shaped like a rule id, wider than the defined ranges so that an id the catalogue
# lacks (R13, D16) is found too. Word boundaries keep out what merely contains such letters:
# hex digests and ULIDs (`ast_01HXZ...`: no boundary inside a word), method names such as
# `d5(...)` (lower case), and SCHEMATHESIS.
ID_LIKE = re.compile(r"\b(?:[RD]\d{1,3}|SCHEMA)\b")
# A range such as R1-R12 or D5-D13 cites every id between its ends.
RANGE = re.compile(r"\b([RD])(\d{1,3})-\1(\d{1,3})\b")

# Id-shaped text that is no citation of a rule, by file and id, each with its reason. Keep it
# short: an entry that no longer matches anything fails test_exclusions_are_still_needed.
EXCLUDED: dict[tuple[str, str], str] = {
    ("tests/test_conformance_kit.py", "R99"):
        "an unknown id on purpose: the kit must refuse `--only R99` as a usage error",
}


def _files() -> list[Path]:
    out = [ROOT / "openapi.yaml"]
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and path != SELF and \
                    not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                out.append(path)
    return out


def cited_ids(text: str) -> set[str]:
    """The rule ids a text cites: each id-shaped word, and every id inside a cited range."""
    found = set(ID_LIKE.findall(text))
    for letter, low, high in RANGE.findall(text):
        found |= {f"{letter}{n}" for n in range(int(low), int(high) + 1)}
    return found


def _citations() -> dict[str, set[str]]:
    """Each id cited in the scanned files -> the files citing it, less the exclusions."""
    where: dict[str, set[str]] = {}
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        for rule in cited_ids(path.read_text(encoding="utf-8", errors="replace")):
            if (rel, rule) not in EXCLUDED:
                where.setdefault(rule, set()).add(rel)
    return where


def _registry_rules() -> dict[str, list[str]]:
    """Each rule id the reports use -> the checks (kit and proxy) that report under it."""
    from layers_kit.conformance.proxy.checks import CHECKS as PROXY_CHECKS
    from layers_kit.conformance.registry import all_checks

    out: dict[str, list[str]] = {}
    for c in all_checks():
        out.setdefault(c.rule, []).append(f"run {c.name}")
    for c in PROXY_CHECKS:
        out.setdefault(c.rule, []).append(f"proxy {c.name}")
    return out


def test_the_scanner_finds_ids_and_ranges_and_ignores_lookalikes():
    assert cited_ids("R3 and D12 (D5-D7), rule SCHEMA") == {"R3", "D12", "D5", "D6", "D7",
                                                             "SCHEMA"}
    assert cited_ids("R1-R3") == {"R1", "R2", "R3"}
    unknown = "R" + "13"
    assert cited_ids(f"see {unknown}") == {unknown}  # an undefined id is found, not skipped
    assert cited_ids("ast_01HXZB0C1D2E3F4G5H6J7K8M9N 3fD5a0 obs.d5(x) SCHEMATHESIS "
                     "D5x R1_a") == set()


def test_every_cited_id_is_in_the_catalogue():
    missing = {rule: sorted(files) for rule, files in _citations().items()
               if rule not in CATALOGUE}
    assert not missing, (
        f"rule ids used but not defined in contract/catalogue.py: {missing}; define each "
        "there (id, title, statement, family), or if the text is no rule citation add it to "
        "EXCLUDED in this test with the reason")


def test_exclusions_are_still_needed():
    for (rel, rule), reason in EXCLUDED.items():
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert rule in cited_ids(text), f"{rel} no longer has {rule} ({reason}): drop it"


def test_every_check_reports_under_a_catalogued_rule():
    rules = _registry_rules()
    unknown = {rule: checks for rule, checks in rules.items() if rule not in CATALOGUE}
    assert not unknown, f"checks report under rule ids contract/catalogue.py lacks: {unknown}"
    sections = {rule: checks for rule, checks in rules.items()
                if CATALOGUE[rule].family == PRODUCT_SECTION}
    assert not sections, f"checks hold a product section, not a rule of the API: {sections}"


@pytest.mark.parametrize("rule", catalogue.ids(REGENERATE_RULE, API_RULE))
def test_every_rule_of_the_api_is_checked_or_says_why_not(rule):
    entry = CATALOGUE[rule]
    checks = _registry_rules().get(rule, [])
    if checks:
        assert not entry.unchecked, (f"{rule} is held by {checks}: drop its `unchecked` "
                                     f"reason ({entry.unchecked!r})")
    else:
        assert entry.unchecked, (f"no check of the kit or the proxy holds {rule}: add one, or "
                                 "give the entry an `unchecked` reason")


def test_the_catalogue_is_well_formed():
    assert set(catalogue.ids(REGENERATE_RULE)) == {f"R{n}" for n in range(1, 13)}
    assert len(CATALOGUE) == len(catalogue.ids())  # no id twice
    for entry in CATALOGUE.values():
        assert entry.family in FAMILIES, entry
        assert catalogue.ID_PATTERN.fullmatch(entry.id), entry.id
        assert entry.title.strip() and "\n" not in entry.title, entry.id
        sentences = re.findall(r"[.!?](?=\s|$)", entry.statement.strip())
        assert entry.statement.strip().endswith(".") and 1 <= len(sentences) <= 4, (
            f"{entry.id}: a statement is one to four sentences")
        assert "DESIGN" not in entry.statement, f"{entry.id}: state the rule, cite no document"


def test_the_contract_layer_imports_neither_the_mock_nor_the_kit():
    source = (ROOT / "contract" / "catalogue.py").read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", source, flags=re.M)
    assert not [m for m in imports if m.startswith(("layers_kit.mock", "layers_kit.conformance",
                                                      "mock", "conformance"))], imports


def test_the_rules_page_is_generated_from_the_catalogue_and_the_registries():
    from layers_kit.conformance.catalogue import COMMAND, render

    page = ROOT / "docs" / "reference" / "rules.md"
    assert page.exists(), f"docs/reference/rules.md is missing: run `{COMMAND}`"
    assert page.read_text(encoding="utf-8") == render(), (
        f"docs/reference/rules.md is out of date with the catalogue or the check registries: "
        f"regenerate it with `.venv/bin/{COMMAND}` from the repository root and commit it")
    for rule in CATALOGUE:
        assert f"### {rule}: " in page.read_text(encoding="utf-8"), rule
