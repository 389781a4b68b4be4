"""Output handlers over the runner's stream: live console, JUnit XML, and a report in Markdown,
HTML or JSON (by suffix). The JSON report has a versioned schema (REPORT_SCHEMA, README)."""

from __future__ import annotations

import html
import json
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from layers_kit.conformance import promises
from layers_kit.conformance.contract import documented_statuses
from layers_kit.conformance.failures import Exchange
from layers_kit.conformance.runner import Outcome, RunResult
from layers_kit.conformance.schema_phase import command_line, tally_lines
from layers_kit.conformance.target import Target
from layers_kit.conformance.verdicts import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    MARK,
    NOT_RUN,
    PASSED,
    VERDICTS,
    WAIVED,
)
from layers_kit.contract import catalogue

REPORT_SCHEMA = "layers-conformance-report"
REPORT_VERSION = 1
REPORT_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".json")

# The rules the kit's checks hold, titled as the rule catalogue (contract/catalogue.py) titles
# them, in its order: D2 (which operations exist) is judged by the proxy alone.
RULE_TITLES = OrderedDict(
    (rule, catalogue.get(rule).title)
    for rule in catalogue.ids(catalogue.REGENERATE_RULE, catalogue.API_RULE)
    if rule != "D2")

SPEND_NOTE = ("What a run creates and spends on the target (measured against the bundled mock, "
              "default profile; each run prints its own figures at the end, `--plan` an "
              "estimate first, and the reports list every id created): the checks make about "
              "36 containers (five per generateContent) and 44 job starts in --project-id "
              "(five of them in --policy-project-id when given), "
              "reserving about 5,400 credits (canceled jobs release theirs), leave a few "
              "scheduled posts and change the review policy a few times, restoring it; "
              "Schemathesis adds about 25 containers and 20 job starts (few positive cases of "
              "the job-start operations: its job-start budget), 3,000-4,000 credits and about "
              "50 scheduled posts, by seed. "
              "Every post the kit or Schemathesis schedules is dated at least a year ahead "
              "(a date in the past would mean: publish now).")


def by_rule(result: RunResult) -> OrderedDict[str, list[Outcome]]:
    grouped: OrderedDict[str, list[Outcome]] = OrderedDict((r, []) for r in RULE_TITLES)
    for o in result.outcomes:
        grouped.setdefault(o.rule, []).append(o)
    return grouped


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


class Console:
    """A line per check as it finishes, then a verdict per rule, then what the run spent."""

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
            line += f"  ({o.status}: {_first_line(o.message)})"
        self._print(line + f"  {o.seconds:.1f}s")
        if o.status == FAILED and self.verbose:
            for part in (o.expected and f"    expected: {o.expected}",
                         o.received and f"    received: {o.received}", *o.diff):
                if part:
                    self._print(part if part.startswith("    ") else f"    {part}")

    def finished(self, result: RunResult) -> None:
        self._print()
        verdicts = result.rules()
        for rule, outcomes in by_rule(result).items():
            if outcomes:
                status = verdicts[rule]
                self._print(f"  {MARK[status]} {rule:<6} {status:<12} "
                            f"{RULE_TITLES.get(rule, '')}")
        counts = {s: len(result.with_status(s)) for s in VERDICTS}
        self._print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in
                                     (PASSED, FAILED)) + f" in {result.seconds:.1f}s")
        for o in result.with_status(INCONCLUSIVE):
            self._print(f"INCONCLUSIVE {o.rule} {o.name}: {_first_line(o.message)}"
                        + (f" (needed: {o.needed})" if o.needed else ""))
        for o in result.with_status(ERROR):
            self._print(f"KIT ERROR {o.rule} {o.name} (not counted against the target): "
                        f"{_first_line(o.message)}")
        for w in result.expired_waivers:
            self._print(f"expired waiver ignored: {w.id} (expired {w.expires}): {w.reason}")
        for o in result.failed:
            self._print(f"\nFAILED {o.rule} {o.name}: {_first_line(o.message)}")
            if o.expected:
                self._print(f"  expected: {o.expected}")
            if o.received:
                self._print(f"  received: {o.received}")
            for d in o.diff:
                self._print(f"  {d}")
            for ex in o.exchanges[:1]:
                self._print(f"  decisive exchange: {ex.method} {ex.url} -> {ex.status}")
        if result.schema is not None and result.schema.junit is not None:
            self._print(f"\nSchemathesis JUnit: {result.schema.junit}")
        self._print(f"\nThis run spent: {result.spend.line()}.")
        if result.schema is not None:
            self._print(f"  of which Schemathesis: {result.schema.spend.line()}.")
        if result.schema is not None:
            for line in tally_lines(result.schema):
                self._print(line)
        self._print(promises.coverage_line() + " (docs/reference/rules.md lists them).")
        created = result.created
        if any(created.values()):
            self._print("It created (ids in the reports): " + ", ".join(
                f"{len(ids)} {kind}" for kind, ids in created.items()) + ".")
        for line in closing_lines(result):
            self._print(line)


def closing_lines(result: RunResult) -> list[str]:
    """What a CI log must end with: what did not run and which options would run it, what
    could not be judged, and why the exit status is what it is."""
    lines = [""]
    if result.target.tls.insecure:
        lines.append("WARNING: --insecure: no certificate was verified in this run.")
    missing = result.not_run_options()
    if missing:
        n = sum(len(v) for v in missing.values())
        lines.append(f"{n} check(s) did not run; the options that would run them:")
        lines += [f"  {option}: {', '.join(checks)}" for option, checks in missing.items()]
    if result.transport_trouble:
        lines.append(f"{len(result.transport_trouble)} check(s) could not judge: a request got "
                     "no answer (the network's or the TLS setup's fault, not the target's):")
        lines += [f"  {o.rule} {o.name}: {_first_line(o.message)}"
                  for o in result.transport_trouble[:5]]
    code = result.exit_code
    if code == 1:
        lines.append(f"Exit status 1: the target broke the contract ({len(result.failed)} "
                     "check(s) failed).")
    elif code == 2:
        why = []
        if result.transport_trouble:
            why.append("transport trouble")
        if result.failing_verdicts:
            named = sorted({o.status for o in result.failing_verdicts})
            why.append(f"--fail-on {','.join(result.fail_on)} and {len(result.failing_verdicts)}"
                       f" check(s) ended {', '.join(named)}")
        lines.append(f"Exit status 2: the run could not judge ({'; '.join(why)}).")
    else:
        lines.append("Exit status 0: no check failed"
                     + (f" (--fail-on {','.join(result.fail_on)})." if result.fail_on != (
                         "failed",) else "."))
    return lines


class _FileAtEnd:
    """A handler that writes one file when the run has finished."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def started(self, target: Target, total: int) -> None:
        pass

    def outcome(self, o: Outcome) -> None:
        pass


class JUnit(_FileAtEnd):
    """JUnit XML: one testsuite, a testcase per check, classname = rule id. failed is a
    failure, error an error; not run, inconclusive and waived are skipped with their reason."""

    def finished(self, result: RunResult) -> None:
        skipped = [o for o in result.outcomes if o.status in (NOT_RUN, INCONCLUSIVE, WAIVED)]
        suite = ET.Element("testsuite", name="layers-conformance",
                           tests=str(len(result.outcomes)),
                           failures=str(len(result.failed)),
                           errors=str(len(result.with_status(ERROR))),
                           skipped=str(len(skipped)), time=f"{result.seconds:.2f}")
        props = ET.SubElement(suite, "properties")
        for name, value in (("target", result.target.base_url),
                            ("tls", result.target.tls.describe()),
                            ("exitCode", str(result.exit_code)),
                            ("failOn", ",".join(result.fail_on))):
            ET.SubElement(props, "property", name=name, value=value)
        for o in result.outcomes:
            case = ET.SubElement(suite, "testcase", classname=o.rule, name=o.name,
                                 time=f"{o.seconds:.2f}")
            if o.status == FAILED:
                node = ET.SubElement(case, "failure", message=f"{o.rule}: {o.message}"[:1000])
                node.text = _failure_text(o)
            elif o.status == ERROR:
                node = ET.SubElement(case, "error", message=o.message[:1000])
                node.text = o.traceback or ""
            elif o.status in (NOT_RUN, INCONCLUSIVE, WAIVED):
                ET.SubElement(case, "skipped", message=f"{o.status}: {o.message}"[:1000])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suite).write(self.path, encoding="utf-8", xml_declaration=True)


def _exchange_text(ex: Exchange) -> list[str]:
    lines = [f"> {ex.method} {ex.url}"]
    lines += [f"> {k}: {v}" for k, v in ex.request_headers.items()]
    if ex.request_body:
        lines.append(f"> {ex.request_body}")
    lines.append(f"< {ex.status if ex.status is not None else ex.error}")
    lines += [f"< {k}: {v}" for k, v in ex.response_headers.items()]
    if ex.response_body:
        lines.append(f"< {ex.response_body}")
    return lines


def _failure_text(o: Outcome) -> str:
    lines = [o.title, o.message]
    if o.expected:
        lines.append(f"expected: {o.expected}")
    if o.received:
        lines.append(f"received: {o.received}")
    if o.diff:
        lines += ["field by field:"] + [f"  {d}" for d in o.diff]
    for ex in o.exchanges:
        lines += ["", "the decisive exchange:", *_exchange_text(ex)]
    return "\n".join(lines)


def coverage_rows(result: RunResult) -> list[dict[str, Any]]:
    """Operation x documented status, observed or not; undocumented statuses seen are listed
    too (documented: false)."""
    seen = result.coverage()
    rows = []
    documented = documented_statuses()
    for op, statuses in documented.items():
        for status in statuses:
            n = seen.get((op, int(status)), 0) if status.isdigit() else 0
            rows.append({"operation": op, "status": status, "documented": True, "observed": n})
        for (o, st), n in sorted(seen.items()):
            if o == op and str(st) not in statuses:
                rows.append({"operation": op, "status": str(st), "documented": False,
                             "observed": n})
    return rows


class Report(_FileAtEnd):
    """Markdown, self-contained HTML or JSON, chosen by the file's suffix."""

    def finished(self, result: RunResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        if suffix in (".html", ".htm"):
            text = self.html(result)
        elif suffix == ".json":
            text = json.dumps(self.as_json(result), indent=2, ensure_ascii=False) + "\n"
        else:
            text = self.markdown(result)
        self.path.write_text(text, encoding="utf-8")

    @staticmethod
    def as_json(result: RunResult) -> dict[str, Any]:
        verdicts = result.rules()
        schema = result.schema
        return {
            "schema": REPORT_SCHEMA, "version": REPORT_VERSION,
            "generatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "target": result.target.base_url, "profile": result.profile,
            "tls": result.target.tls.describe(), "insecure": result.target.tls.insecure,
            "seconds": result.seconds, "exitCode": result.exit_code,
            "failOn": list(result.fail_on),
            "counts": {s: len(result.with_status(s)) for s in VERDICTS},
            "rules": [{"id": rule, "title": RULE_TITLES.get(rule, ""),
                       "verdict": verdicts[rule], "checks": [o.name for o in outcomes]}
                      for rule, outcomes in by_rule(result).items() if outcomes],
            "checks": [{"rule": o.rule, "name": o.name, "title": o.title,
                        "verdict": o.status, "message": o.message, "expected": o.expected,
                        "received": o.received, "diff": o.diff, "option": o.option,
                        "needed": o.needed, "traceback": o.traceback, "seconds": o.seconds,
                        "transport": o.transport,
                        "evidence": [e.as_dict() for e in o.exchanges]}
                       for o in result.outcomes],
            "coverage": coverage_rows(result),
            "spend": result.spend.as_dict(),
            "created": result.created,
            "promises": promises.coverage(),
            "notRun": result.not_run_options(),
            "transportTrouble": [o.name for o in result.transport_trouble],
            "schemathesis": None if schema is None else {
                "ok": schema.ok, "junit": schema.junit and str(schema.junit),
                "har": schema.har and str(schema.har), "command": command_line(schema),
                "reproduce": schema.reproduce, "spend": schema.spend.as_dict(),
                "verdict": schema.verdict, "reasons": schema.reasons,
                "warnings": schema.warnings,
                "tally": {op: dict(counts) for op, counts in schema.tally.items()}},
            "expiredWaivers": [{"id": w.id, "reason": w.reason, "expires": str(w.expires)}
                               for w in result.expired_waivers],
        }

    @staticmethod
    def _coverage_md(result: RunResult) -> list[str]:
        rows = coverage_rows(result)
        statuses = sorted({r["status"] for r in rows})
        ops = list(OrderedDict((r["operation"], None) for r in rows))
        cell = {(r["operation"], r["status"]): r for r in rows}
        out = ["", "## Coverage: operation x status", "",
               "✓n observed n times; · documented, not observed; ! observed, not documented.",
               "", "| operation | " + " | ".join(statuses) + " |",
               "|---|" + "---|" * len(statuses)]
        for op in ops:
            cells = []
            for st in statuses:
                r = cell.get((op, st))
                cells.append("" if r is None else (f"✓{r['observed']}" if r["documented"] and
                                                   r["observed"] else "·" if r["documented"]
                                                   else f"!{r['observed']}"))
            out.append(f"| {op} | " + " | ".join(cells) + " |")
        return out

    @staticmethod
    def markdown(result: RunResult) -> str:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        verdicts = result.rules()
        out = [f"# Conformance report: {result.target.base_url}", "",
               f"{stamp}, {result.seconds:.1f}s, profile {result.profile}. "
               f"Exit status {result.exit_code}. {result.target.tls.describe()}.", "",
               "| rule | verdict | what | checks |", "|---|---|---|---|"]
        for rule, outcomes in by_rule(result).items():
            if not outcomes:
                continue
            detail = "; ".join(f"{MARK[o.status]} {o.name}" for o in outcomes)
            out.append(f"| {rule} | {verdicts[rule]} | {RULE_TITLES.get(rule, '')} | "
                       f"{detail} |")
        sections = [(NOT_RUN, "Not run", lambda o: f" (run it with {o.option})"
                     if o.option else ""),
                    (INCONCLUSIVE, "Inconclusive", lambda o: f" (needed: {o.needed})"
                     if o.needed else ""),
                    (WAIVED, "Waived", lambda o: ""),
                    (ERROR, "Kit errors (not counted against the target)", lambda o: "")]
        for status, title, tail in sections:
            items = result.with_status(status)
            if items:
                out += ["", f"## {title}", ""]
                out += [f"- **{o.rule}** `{o.name}` {o.title}: {_first_line(o.message)}"
                        + tail(o) for o in items]
                if status == ERROR:
                    for o in items:
                        out += ["", "```", o.traceback or "", "```"]
        if result.failed:
            out += ["", "## Failures"]
            for o in result.failed:
                out += ["", f"### {o.rule} {o.name}", "", o.title, "", "```",
                        _failure_text(o), "```"]
        if result.schema is not None:
            s = result.schema
            out += ["", "## Schemathesis", "", f"Command (the key travels in the environment):"
                    f" `{command_line(s)}`"]
            if s.junit:
                out.append(f"JUnit: `{s.junit}`; HAR: `{s.har}`")
            if s.reproduce:
                out += ["", "Reproduce:", "", "```", *s.reproduce, "```"]
            out += ["", f"Verdict: {s.verdict}." + (f" {'; '.join(s.reasons)}." if s.reasons
                                                   else ""), "", "```", *tally_lines(s), "```"]
        out += Report._coverage_md(result)
        out += ["", "## What this run spent", "", result.spend.line() + "."]
        out += ["", "## Promises of the contract", "", promises.coverage_line() +
                " (docs/reference/rules.md lists them, with the checks that hold them)."]
        out += ["", "## What this run created (for clean-up)", ""]
        out += [f"- {kind}: " + (", ".join(f"`{i}`" for i in ids) or "none")
                for kind, ids in result.created.items()]
        out += ["", "## Closing", "", "```", *closing_lines(result)[1:], "```"]
        return "\n".join(out) + "\n"

    @staticmethod
    def html(result: RunResult) -> str:
        colors = {PASSED: "#1a7f37", FAILED: "#cf222e", NOT_RUN: "#6e7781",
                  INCONCLUSIVE: "#9a6700", WAIVED: "#6e7781", ERROR: "#8250df",
                  "partial": "#9a6700"}
        verdicts = result.rules()
        rows = []
        for rule, outcomes in by_rule(result).items():
            if not outcomes:
                continue
            status = verdicts[rule]
            checks = "<br>".join(
                f"<span style='color:{colors[o.status]}'>{MARK[o.status]}</span> "
                f"{html.escape(o.title)}" + (f" <em>({o.status}: {html.escape(o.message)})</em>"
                                             if o.status not in (PASSED, FAILED) else "")
                for o in outcomes)
            rows.append(f"<tr><td><b>{rule}</b></td><td style='color:{colors[status]}'>"
                        f"{status}</td><td>{html.escape(RULE_TITLES.get(rule, ''))}</td>"
                        f"<td>{checks}</td></tr>")
        failures = "".join(
            f"<h3>{o.rule} {html.escape(o.name)}</h3><pre>{html.escape(_failure_text(o))}</pre>"
            for o in result.failed)
        md = Report._coverage_md(result)
        coverage = "<pre>" + html.escape("\n".join(md[3:])) + "</pre>"
        created = "".join(
            f"<li>{kind}: {html.escape(', '.join(ids)) or 'none'}</li>"
            for kind, ids in result.created.items())
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conformance report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:.4em .6em;
vertical-align:top;text-align:left}}pre{{background:#f6f8fa;padding:1em;overflow:auto;
white-space:pre-wrap}}</style></head><body>
<h1>Conformance report</h1>
<p>Target <code>{html.escape(result.target.base_url)}</code>, {result.seconds:.1f}s,
exit status {result.exit_code}: {len(result.failed)} failed of {len(result.outcomes)} checks.
{html.escape(result.target.tls.describe())}.</p>
<table><tr><th>rule</th><th>verdict</th><th>what</th><th>checks</th></tr>
{''.join(rows)}</table>
{'<h2>Failures</h2>' + failures if failures else ''}
<h2>Coverage: operation x status</h2>{coverage}
<h2>What this run spent</h2><p>{html.escape(result.spend.line())}.</p>
<h2>What this run created (for clean-up)</h2><ul>{created}</ul>
<pre>{html.escape(chr(10).join(closing_lines(result)[1:]))}</pre>
</body></html>
"""
