"""The diff's result as text (for people), JSON (for programs) or JUnit XML (for CI)."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from layers_kit.contract.diff import DiffResult
from layers_kit.contract.rules import RULES


def verdict(result: DiffResult) -> str:
    if not result.breaking:
        return "pass: no breaking change"
    if result.major_raised:
        return (f"pass: {len(result.breaking)} breaking change(s), announced by the major version "
                f"{result.base_major} -> {result.new_major}")
    return (f"FAIL: {len(result.breaking)} breaking change(s) within major version "
            f"{result.new_major}; raise the major version or undo them")


def as_text(result: DiffResult, *, breaking_only: bool = False) -> str:
    lines = [f"contract diff {result.base_version} -> {result.new_version}"]
    for c in result.changes:
        if breaking_only and not c.breaking:
            continue
        where = " (in BASE)" if c.in_base else ""
        lines.append(f"{'BREAKING' if c.breaking else 'ok      '}  {c.rule:<40} {c.message}\n"
                     f"          {c.pointer or '/'}{where}")
    lines.append(f"{len(result.changes)} change(s), {len(result.breaking)} breaking. "
                 f"{verdict(result)}")
    return "\n".join(lines) + "\n"


def as_json(result: DiffResult) -> str:
    return json.dumps({
        "base": {"version": result.base_version, "major": result.base_major},
        "new": {"version": result.new_version, "major": result.new_major},
        "gate": "fail" if result.gate_fails else "pass",
        "verdict": verdict(result),
        "breaking": len(result.breaking),
        "changes": [{"rule": c.rule, "breaking": c.breaking, "pointer": c.pointer,
                     "document": "base" if c.in_base else "new", "message": c.message,
                     "ruleSummary": RULES[c.rule].summary} for c in result.changes],
    }, indent=2) + "\n"


def as_junit(result: DiffResult) -> str:
    """One test case per change (class name: its rule id); a breaking one fails if the gate does."""
    suite = ET.Element("testsuite", name="layers-contract diff",
                       tests=str(len(result.changes) + 1),
                       failures=str(len(result.breaking) if result.gate_fails else 0))
    gate = ET.SubElement(suite, "testcase", classname="D12", name="versioning promise")
    if result.gate_fails:
        ET.SubElement(gate, "failure", message=verdict(result))
    for c in result.changes:
        case = ET.SubElement(suite, "testcase", classname=c.rule,
                             name=f"{c.pointer or '/'}" + (" (in BASE)" if c.in_base else ""))
        if c.breaking and result.gate_fails:
            ET.SubElement(case, "failure", message=c.message, type=c.rule).text = (
                f"{RULES[c.rule].summary}\n{c.message}")
        else:
            ET.SubElement(case, "system-out").text = c.message
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


FORMATS = {"text": as_text, "json": as_json, "junit": as_junit}
