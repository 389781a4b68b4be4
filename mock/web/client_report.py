"""The client report: how each client behaved over time, judged by the contract's client rules
(C1-C6, `layers_kit.contract.behaviour`) from what the mock's journal recorded.

A client is the `X-Client-Id` header a request carries, else its API key (masked). The report
comes as JSON (`GET /__mock/client-report`) or JUnit XML (`?format=junit`: a testsuite per
client, a testcase per rule), and through the `layers_mock` fixture (`client_report()`,
`assert_client_behaves()`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from layers_kit.contract import behaviour


def call_of(entry: dict[str, Any]) -> behaviour.Call | None:
    """The journal entry as a client rule reads it (None: no API call of a client)."""
    if not entry.get("operationId") or not entry.get("client"):
        return None
    return behaviour.Call(
        at=float(entry.get("t") or 0.0), client=entry["client"], method=entry["method"],
        path=entry["path"], operation=entry["operationId"], status=int(entry["status"]),
        idempotency_key=entry.get("idempotencyKey"), fingerprint=entry.get("fingerprint"),
        if_none_match=bool(entry.get("ifNoneMatch")), etag=entry.get("etag"),
        retry_after=entry.get("retryAfter"), rate_class=entry.get("rateClass"),
        error_code=entry.get("errorCode"), job_id=entry.get("jobId"),
        job_status=entry.get("jobStatus"), container_id=entry.get("containerId"),
        request_id=entry.get("requestId"))


def _shown(c: behaviour.Call) -> dict[str, Any]:
    return {"requestId": c.request_id, "at": round(c.at, 3), "method": c.method,
            "path": c.path, "status": c.status, "idempotencyKey": c.idempotency_key}


def report(entries: Iterable[dict[str, Any]], client: str | None = None) -> dict[str, Any]:
    """The JSON report of the journal's entries (one client's, when `client` is given)."""
    calls = [c for c in map(call_of, entries) if c is not None
             and (client is None or c.client == client)]
    judged = behaviour.judge(calls)
    clients = []
    for who, results in judged.items():
        rules = [{"rule": r.rule, "title": r.title, "verdict": r.verdict,
                  "occasions": r.occasions,
                  "breaches": [{"message": b.message, "exchanges": [_shown(c) for c in b.calls]}
                               for b in r.breaches[:10]],
                  "breachCount": len(r.breaches)} for r in results]
        clients.append({"client": who, "calls": sum(1 for c in calls if c.client == who),
                        "passed": all(r["verdict"] != "failed" for r in rules),
                        "rules": rules})
    return {"rules": behaviour.RULES, "thresholds": {
        "minPollIntervalSeconds": behaviour.MIN_POLL_INTERVAL,
        "conflictWaitSeconds": behaviour.CONFLICT_WAIT,
        "retryWindowSeconds": behaviour.RETRY_WINDOW,
        "toleranceSeconds": behaviour.TOLERANCE}, "clients": clients}


def junit(data: dict[str, Any]) -> bytes:
    """JUnit XML: a testsuite per client, a testcase per rule; a rule nothing gave occasion to
    is skipped."""
    root = ET.Element("testsuites", name="layers-mock client report")
    for c in data["clients"]:
        failed = [r for r in c["rules"] if r["verdict"] == "failed"]
        skipped = [r for r in c["rules"] if r["verdict"] == "not observed"]
        suite = ET.SubElement(root, "testsuite", name=f"client {c['client']}",
                              tests=str(len(c["rules"])), failures=str(len(failed)),
                              skipped=str(len(skipped)))
        for r in c["rules"]:
            case = ET.SubElement(suite, "testcase", classname=r["rule"], name=r["title"])
            if r["verdict"] == "failed":
                first = r["breaches"][0]
                node = ET.SubElement(case, "failure", message=f"{r['rule']}: {first['message']}")
                node.text = "\n".join(
                    f"{b['message']}\n" + "\n".join(
                        f"  {e['method']} {e['path']} -> {e['status']} ({e['requestId']})"
                        for e in b["exchanges"]) for b in r["breaches"])
            elif r["verdict"] == "not observed":
                ET.SubElement(case, "skipped", message="nothing in the calls gave occasion")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def failures(data: dict[str, Any], rules: Iterable[str] | None = None) -> list[str]:
    """Each broken rule (of `rules`, or all) of each client, with the exchanges that show it:
    what an assertion in a partner's test prints."""
    wanted = set(rules) if rules is not None else None
    lines = []
    for c in data["clients"]:
        for r in c["rules"]:
            if r["verdict"] != "failed" or (wanted is not None and r["rule"] not in wanted):
                continue
            for b in r["breaches"]:
                shown = "; ".join(f"{e['method']} {e['path']} -> {e['status'] or 'no answer'}"
                                  for e in b["exchanges"])
                lines.append(f"{r['rule']} ({r['title']}) broken by client {c['client']}: "
                             f"{b['message']} [{shown}]")
    return lines
