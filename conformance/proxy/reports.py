"""The proxy's reports, written when it stops: JUnit XML, and Markdown, HTML or JSON by suffix.

Every report comes from one summary (the ledger's snapshot plus each check's verdict), so they
agree; exchanges in them are the first few examples per check, with keys masked.

The exit status: 1 when the server broke the contract (or a client did, with
--fail-on-client-violations); else 2, "could not judge", when a transport failure kept an
exchange from being judged (TLS, connection refused or reset, a timeout, no free connection to
the target) or more than --max-unjudged percent of the exchanges went unjudged (the judge fell
behind); else 0. Transport failures are never counted as server violations: every report
lists them apart, under "transport".
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
DEFAULT_MAX_UNJUDGED = 1.0  # percent of the exchanges that may go unjudged in a passing run
PASSED, FAILED, COULD_NOT_JUDGE = "passed", "failed", "could not judge"


def summary(snapshot: dict[str, Any], *, target: str, fail_on_client: bool,
            max_unjudged: float = DEFAULT_MAX_UNJUDGED, tls: str | None = None) -> dict[str, Any]:
    """The snapshot with a row per check (judged, violations), what kept exchanges from being
    judged, and the exit status."""
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
    transport = snapshot.get("transport") or {"count": 0, "kinds": {}, "examples": []}
    counts = snapshot["counts"]
    exchanges, unjudged = counts.get("exchanges", 0), counts.get("unjudged", 0)
    share = unjudged / exchanges if exchanges else 0.0
    could_not = []
    if transport["count"]:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(transport["kinds"].items()))
        could_not.append(f"{transport['count']} exchange(s) got no complete answer from the "
                         f"target ({kinds}): transport failures, not server violations")
    if unjudged and share * 100 > max_unjudged:
        could_not.append(f"{unjudged} of {exchanges} exchanges ({share:.1%}) were forwarded "
                         f"but not judged (the judge fell behind; more than --max-unjudged "
                         f"{max_unjudged:g} %)")
    status = 1 if failing else 2 if could_not else 0
    return {"target": target, "startedAt": snapshot["startedAt"],
            "seconds": snapshot["seconds"], "counts": counts,
            "verdict": {0: PASSED, 1: FAILED, 2: COULD_NOT_JUDGE}[status],
            "serverViolations": server, "clientViolations": client,
            "transportFailures": transport["count"], "transport": transport,
            "unjudged": unjudged, "unjudgedShare": round(share, 4),
            "maxUnjudgedPercent": max_unjudged, "couldNotJudge": could_not,
            "pendingPeak": snapshot.get("pendingPeak"), "maxPending": snapshot.get("maxPending"),
            "tls": tls, "failOnClientViolations": fail_on_client, "exitStatus": status,
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
    # what kept exchanges from being judged: errors (not failures), in cases of their own
    could_not = _could_not_cases(data)
    suite = ET.Element("testsuite", name="layers-conformance-proxy",
                       tests=str(len(data["checks"]) + len(could_not)),
                       failures=str(len(fails)), errors=str(len(could_not)),
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
    for name, message, text in could_not:
        case = ET.SubElement(suite, "testcase", classname="PROXY", name=name)
        ET.SubElement(case, "error", message=message[:1000]).text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _could_not_cases(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(test case name, message, text) for each thing that kept exchanges from being judged."""
    out = []
    if data["transportFailures"]:
        out.append(("proxy.transport", f"could not judge: {data['couldNotJudge'][0]}",
                    _transport_text(data)))
    if any("not judged" in line for line in data["couldNotJudge"]):
        line = next(line for line in data["couldNotJudge"] if "not judged" in line)
        out.append(("proxy.unjudged", f"could not judge: {line}", line))
    return out


def _transport_text(data: dict[str, Any]) -> str:
    t = data["transport"]
    parts = [f"{t['count']} exchange(s) got no complete answer from the target (transport "
             "failures, not server violations); the first "
             f"{len(t['examples'])}:"]
    for e in t["examples"]:
        parts += [f"\n[{e['kind']}] {e['message']}", _exchange_text(e["exchange"])]
    return "\n".join(parts)


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
    warnings = [f"COULD NOT JUDGE: {line}." for line in data["couldNotJudge"]]
    if data["unjudged"] and not any("not judged" in line for line in data["couldNotJudge"]):
        warnings.append(f"WARNING: {data['unjudged']} exchange(s) "
                        f"({data['unjudgedShare']:.1%}) were forwarded but not judged (the "
                        "judge fell behind).")
    return [
        *warnings,
        f"Target {data['target']}, from {data['startedAt']} for {data['seconds']:g} s. "
        f"Exit status {data['exitStatus']} ({data['verdict']})."
        + (f" {data['tls']}." if data.get("tls") else ""),
        f"{c.get('exchanges', 0)} exchanges: {c.get('checked', 0)} checked, "
        f"{c.get('outsideContract', 0)} outside the contract (forwarded, not judged), "
        f"{c.get('oversizedUnchecked', 0)} with a body over 1 MiB (forwarded, not checked)"
        + (f", {c['unjudged']} not judged (the judge fell behind; forwarded all the same)"
           if c.get("unjudged") else "")
        + (f", {c['transport']} without a complete answer from the target (transport "
           "failures)" if c.get("transport") else "") + ".",
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
    if data["transportFailures"]:
        out += ["", "## Transport failures (not server violations)", "",
                ", ".join(f"{k}: {n}" for k, n in sorted(data["transport"]["kinds"].items())),
                "", "```", _transport_text(data), "```"]
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
    details = "<h2>Violations</h2>" + details if details else ""
    if data["transportFailures"]:
        details += ("<h2>Transport failures (not server violations)</h2>"
                    f"<pre>{html.escape(_transport_text(data))}</pre>")
    head = "".join(
        f"<p style='color:#cf222e'><b>{html.escape(line)}</b></p>"
        if line.startswith(("COULD NOT JUDGE", "WARNING")) else f"<p>{html.escape(line)}</p>"
        for line in _head(data))
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
{details}
</body></html>
"""
