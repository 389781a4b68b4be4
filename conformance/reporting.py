"""Output handlers over the runner's stream: live console, JUnit XML, Markdown/HTML report."""

from __future__ import annotations

import html
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from conformance.runner import FAILED, NOT_RUN, PASSED, Outcome, RunResult
from conformance.target import Target

RULE_TITLES = OrderedDict([
    ("R1", "Accepted: 202 job envelope and Location"),
    ("R2", "The container id never changes"),
    ("R3", "Only the new assets are listed"),
    ("R4", "The caption is replaced"),
    ("R5", "Brief merge and references"),
    ("R6", "preserveAssets keeps the assets"),
    ("R7", "Superseded assets stay readable"),
    ("R8", "Approval resets under review"),
    ("R9", "Scheduled posts are untouched"),
    ("R10", "Busy container: 409 CONFLICT"),
    ("R11", "Failure or cancel keeps the content"),
    ("R12", "Errors: NOT_FOUND, VALIDATION_FAILED, BILLING_EXHAUSTED, MODERATION_BLOCKED"),
    ("D6", "Idempotency"),
    ("D7", "Jobs and time"),
    ("D8", "Auth and tenancy"),
    ("SCHEMA", "Schema conformance (Schemathesis)"),
])
MARK = {PASSED: "✓", FAILED: "✗", NOT_RUN: "-"}


def rule_status(outcomes: list[Outcome]) -> str:
    statuses = {o.status for o in outcomes}
    if FAILED in statuses:
        return FAILED
    if PASSED in statuses:
        return PASSED
    return NOT_RUN


def by_rule(result: RunResult) -> OrderedDict[str, list[Outcome]]:
    grouped: OrderedDict[str, list[Outcome]] = OrderedDict((r, []) for r in RULE_TITLES)
    for o in result.outcomes:
        grouped.setdefault(o.rule, []).append(o)
    return grouped


class Console:
    """A line per check as it finishes, then a summary per rule."""

    def __init__(self, stream: TextIO = sys.stdout, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        self.done = 0
        self.total = 0

    def _print(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def started(self, target: Target, total: int) -> None:
        self.total = total
        self._print(f"layers-conformance: {total} checks against {target.base_url}")

    def outcome(self, o: Outcome) -> None:
        self.done += 1
        line = f"[{self.done:>2}/{self.total}] {MARK[o.status]} {o.rule:<6} {o.title}"
        if o.status != PASSED:
            line += f"  ({o.status}: {o.message.splitlines()[0] if o.message else ''})"
        self._print(line + f"  {o.seconds:.1f}s")
        if o.status == FAILED and self.verbose:
            for part in (o.expected and f"    expected: {o.expected}",
                         o.received and f"    received: {o.received}"):
                if part:
                    self._print(part)

    def finished(self, result: RunResult) -> None:
        self._print()
        for rule, outcomes in by_rule(result).items():
            if outcomes:
                status = rule_status(outcomes)
                self._print(f"  {MARK[status]} {rule:<6} {status:<8} "
                            f"{RULE_TITLES.get(rule, '')}")
        counts = {s: sum(o.status == s for o in result.outcomes)
                  for s in (PASSED, FAILED, NOT_RUN)}
        self._print(f"\n{counts[PASSED]} passed, {counts[FAILED]} failed, "
                    f"{counts[NOT_RUN]} not run in {result.seconds:.1f}s")
        for o in result.failed:
            self._print(f"\nFAILED {o.rule} {o.name}: {o.message}")
            if o.expected:
                self._print(f"  expected: {o.expected}")
            if o.received:
                self._print(f"  received: {o.received}")


class _FileAtEnd:
    """A handler that writes one file when the run has finished."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def started(self, target: Target, total: int) -> None:
        pass

    def outcome(self, o: Outcome) -> None:
        pass


class JUnit(_FileAtEnd):
    """JUnit XML: one testsuite, a testcase per check, classname = rule id."""

    def finished(self, result: RunResult) -> None:
        suite = ET.Element("testsuite", name="layers-conformance",
                           tests=str(len(result.outcomes)),
                           failures=str(len(result.failed)),
                           skipped=str(sum(o.status == NOT_RUN for o in result.outcomes)),
                           time=f"{result.seconds:.2f}")
        for o in result.outcomes:
            case = ET.SubElement(suite, "testcase", classname=o.rule, name=o.name,
                                 time=f"{o.seconds:.2f}")
            if o.status == FAILED:
                node = ET.SubElement(case, "failure", message=f"{o.rule}: {o.message}"[:1000])
                node.text = _failure_text(o)
            elif o.status == NOT_RUN:
                ET.SubElement(case, "skipped", message=o.message)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suite).write(
            self.path, encoding="utf-8", xml_declaration=True)


def _failure_text(o: Outcome) -> str:
    lines = [o.title, o.message]
    if o.expected:
        lines.append(f"expected: {o.expected}")
    if o.received:
        lines.append(f"received: {o.received}")
    for ex in o.exchanges:
        lines.append(f"\n> {ex.method} {ex.url}")
        lines += [f"> {k}: {v}" for k, v in ex.request_headers.items()]
        if ex.request_body:
            lines.append(f"> {ex.request_body}")
        lines.append(f"< {ex.status if ex.status is not None else ex.error}")
        lines += [f"< {k}: {v}" for k, v in ex.response_headers.items()]
        if ex.response_body:
            lines.append(f"< {ex.response_body}")
    return "\n".join(lines)


class Report(_FileAtEnd):
    """Markdown or self-contained HTML, chosen by the file's suffix."""

    def finished(self, result: RunResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = self.html(result) if self.path.suffix.lower() in (".html", ".htm") \
            else self.markdown(result)
        self.path.write_text(text, encoding="utf-8")

    @staticmethod
    def markdown(result: RunResult) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        out = [f"# Conformance report: {result.target.base_url}", "",
               f"{stamp}, {result.seconds:.1f}s. Exit status {result.exit_code}.", "",
               "| rule | status | what | checks |", "|---|---|---|---|"]
        for rule, outcomes in by_rule(result).items():
            if not outcomes:
                continue
            detail = "; ".join(f"{MARK[o.status]} {o.name}" for o in outcomes)
            out.append(f"| {rule} | {rule_status(outcomes)} | {RULE_TITLES.get(rule, '')} | "
                       f"{detail} |")
        not_run = [o for o in result.outcomes if o.status == NOT_RUN]
        if not_run:
            out += ["", "## Not run", ""]
            out += [f"- **{o.rule}** {o.title}: {o.message}" +
                    (f" (run it with {o.option})" if o.option else "") for o in not_run]
        if result.failed:
            out += ["", "## Failures"]
            for o in result.failed:
                out += ["", f"### {o.rule} {o.name}", "", o.title, "", "```",
                        _failure_text(o), "```"]
        return "\n".join(out) + "\n"

    @staticmethod
    def html(result: RunResult) -> str:
        colors = {PASSED: "#1a7f37", FAILED: "#cf222e", NOT_RUN: "#6e7781"}
        rows = []
        for rule, outcomes in by_rule(result).items():
            if not outcomes:
                continue
            status = rule_status(outcomes)
            checks = "<br>".join(
                f"<span style='color:{colors[o.status]}'>{MARK[o.status]}</span> "
                f"{html.escape(o.title)}" + (f" <em>({html.escape(o.message)})</em>"
                                             if o.status == NOT_RUN else "")
                for o in outcomes)
            rows.append(f"<tr><td><b>{rule}</b></td><td style='color:{colors[status]}'>"
                        f"{status}</td><td>{html.escape(RULE_TITLES.get(rule, ''))}</td>"
                        f"<td>{checks}</td></tr>")
        failures = "".join(
            f"<h3>{o.rule} {html.escape(o.name)}</h3><pre>{html.escape(_failure_text(o))}</pre>"
            for o in result.failed)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conformance report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:.4em .6em;
vertical-align:top;text-align:left}}pre{{background:#f6f8fa;padding:1em;overflow:auto;
white-space:pre-wrap}}</style></head><body>
<h1>Conformance report</h1>
<p>Target <code>{html.escape(result.target.base_url)}</code>, {result.seconds:.1f}s,
exit status {result.exit_code}: {len(result.failed)} failed of {len(result.outcomes)} checks.</p>
<table><tr><th>rule</th><th>status</th><th>what</th><th>checks</th></tr>
{''.join(rows)}</table>
{'<h2>Failures</h2>' + failures if failures else ''}
</body></html>
"""
