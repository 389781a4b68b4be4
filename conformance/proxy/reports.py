"""The proxy's reports, written when it stops: JUnit XML, and Markdown, HTML or JSON by suffix.

Every report comes from one summary (the ledger's snapshot plus each check's verdict), so they
agree; exchanges in them are the first few examples per check, with keys masked.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from layers_kit.conformance.proxy.checks import CHECKS
from layers_kit.conformance.proxy.ledger import CLIENT, SERVER

REPORT_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".json")


def summary(snapshot: dict[str, Any], *, target: str, fail_on_client: bool) -> dict[str, Any]:
    """The snapshot with a row per check (judged, violations) and the exit status."""
    found = {t["check"]: t for side in (SERVER, CLIENT) for t in snapshot[side]}
    rows = []
    for c in CHECKS:
        tally = found.get(c.name)
        rows.append({"side": c.side, "rule": c.rule, "check": c.name, "title": c.title,
                     "judged": snapshot["checksRun"].get(c.name, 0),
                     "violations": tally["count"] if tally else 0,
                     "examples": tally["examples"] if tally else []})
    server = sum(r["violations"] for r in rows if r["side"] == SERVER)
    client = sum(r["violations"] for r in rows if r["side"] == CLIENT)
    failing = server > 0 or (fail_on_client and client > 0)
    return {"target": target, "startedAt": snapshot["startedAt"],
            "seconds": snapshot["seconds"], "counts": snapshot["counts"],
            "serverViolations": server, "clientViolations": client,
            "failOnClientViolations": fail_on_client, "exitStatus": 1 if failing else 0,
            "checks": rows}


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    elif suffix in (".html", ".htm"):
        text = _html(data)
    else:
        text = _markdown(data)
    path.write_text(text, encoding="utf-8")


def write_junit(path: Path, data: dict[str, Any]) -> None:
    """A test case per check, class name the rule id; a client check fails the suite only
    with --fail-on-client-violations (else its findings are in system-out)."""
    fails = [r for r in data["checks"] if _fails(r, data)]
    suite = ET.Element("testsuite", name="layers-conformance-proxy",
                       tests=str(len(data["checks"])), failures=str(len(fails)),
                       time=f"{data['seconds']:.1f}")
    for r in data["checks"]:
        case = ET.SubElement(suite, "testcase", classname=r["rule"], name=r["check"])
        if r["violations"]:
            text = _violation_text(r)
            if _fails(r, data):
                node = ET.SubElement(case, "failure", message=(
                    f"{r['rule']} {r['title']}: {r['violations']} violation(s)")[:1000])
                node.text = text
            else:
                ET.SubElement(case, "system-out").text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _fails(row: dict[str, Any], data: dict[str, Any]) -> bool:
    return bool(row["violations"]) and (row["side"] == SERVER or data["failOnClientViolations"])


def _exchange_text(ex: dict[str, Any]) -> str:
    lines = [f"> {ex['method']} {ex['path']}"]
    lines += [f"> {k}: {v}" for k, v in ex["requestHeaders"].items()]
    if ex["requestBody"]:
        lines.append(f"> {ex['requestBody']}")
    lines.append(f"< {ex['status'] if ex['status'] is not None else ex['error']}")
    lines += [f"< {k}: {v}" for k, v in ex["responseHeaders"].items()]
    if ex["responseBody"]:
        lines.append(f"< {ex['responseBody']}")
    return "\n".join(lines)


def _violation_text(row: dict[str, Any]) -> str:
    parts = [f"{row['violations']} exchange(s) broke {row['rule']}: {row['title']}; "
             f"the first {len(row['examples'])}:"]
    for e in row["examples"]:
        parts.append(f"\n{e['message']}")
        if e["expected"]:
            parts.append(f"expected: {e['expected']}")
        if e["received"]:
            parts.append(f"received: {e['received']}")
        parts.append(_exchange_text(e["exchange"]))
    return "\n".join(parts)


def _head(data: dict[str, Any]) -> list[str]:
    c = data["counts"]
    return [
        f"Target {data['target']}, from {data['startedAt']} for {data['seconds']:g} s. "
        f"Exit status {data['exitStatus']}.",
        f"{c.get('exchanges', 0)} exchanges: {c.get('checked', 0)} checked, "
        f"{c.get('outsideContract', 0)} outside the contract (forwarded, not judged), "
        f"{c.get('oversizedUnchecked', 0)} with a body over 1 MiB (forwarded, not checked)"
        + (f", {c['unjudged']} not judged (the judge fell behind; forwarded all the same)"
           if c.get("unjudged") else "") + ".",
        f"{data['serverViolations']} server violation(s), {data['clientViolations']} client "
        "violation(s)" + (" (client violations fail the run)" if data["failOnClientViolations"]
                          else " (client violations are reported, they do not fail the run)")
        + ".",
    ]


def _markdown(data: dict[str, Any]) -> str:
    out = ["# Validating proxy report", "", *_head(data), "",
           "| side | rule | check | what | exchanges judged | violations |",
           "|---|---|---|---|---|---|"]
    out += [f"| {r['side']} | {r['rule']} | `{r['check']}` | {r['title']} | {r['judged']} | "
            f"{'**' + str(r['violations']) + '**' if r['violations'] else 0} |"
            for r in data["checks"]]
    for side in (SERVER, CLIENT):
        rows = [r for r in data["checks"] if r["side"] == side and r["violations"]]
        if rows:
            out += ["", f"## {side.capitalize()} violations"]
            for r in rows:
                out += ["", f"### {r['rule']} `{r['check']}`", "", "```", _violation_text(r),
                        "```"]
    return "\n".join(out) + "\n"


def _html(data: dict[str, Any]) -> str:
    def row(r: dict[str, Any]) -> str:
        color = "#cf222e" if _fails(r, data) else "#9a6700" if r["violations"] else "#1a7f37"
        return (f"<tr><td>{r['side']}</td><td><b>{r['rule']}</b></td>"
                f"<td><code>{html.escape(r['check'])}</code></td>"
                f"<td>{html.escape(r['title'])}</td><td>{r['judged']}</td>"
                f"<td style='color:{color}'>{r['violations']}</td></tr>")

    details = "".join(
        f"<h3>{side} · {r['rule']} <code>{html.escape(r['check'])}</code></h3>"
        f"<pre>{html.escape(_violation_text(r))}</pre>"
        for side in (SERVER, CLIENT) for r in data["checks"]
        if r["side"] == side and r["violations"])
    head = "".join(f"<p>{html.escape(line)}</p>" for line in _head(data))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Validating proxy report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:75em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:.4em .6em;
vertical-align:top;text-align:left}}pre{{background:#f6f8fa;padding:1em;overflow:auto;
white-space:pre-wrap}}</style></head><body>
<h1>Validating proxy report</h1>
{head}
<table><tr><th>side</th><th>rule</th><th>check</th><th>what</th><th>exchanges judged</th>
<th>violations</th></tr>
{''.join(row(r) for r in data['checks'])}</table>
{'<h2>Violations</h2>' + details if details else ''}
</body></html>
"""
