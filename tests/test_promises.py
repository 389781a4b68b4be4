"""The inventory of the contract's promises (contract/promises.yaml): every promise sentence of
openapi.yaml has one entry, held by a check, by the schema phase, or said not observable with
what to do instead; a new or changed promise fails here until its entry is written."""

from __future__ import annotations

import copy
import datetime as dt

from layers_kit.conformance import promises
from layers_kit.conformance.checks import bodies
from layers_kit.conformance.checks.approval import future_date
from layers_kit.contract import spec


def test_every_promise_has_one_good_entry():
    assert promises.problems() == []


def test_a_new_promise_sentence_without_an_entry_fails():
    doc = copy.deepcopy(spec.load_spec())
    op = doc["paths"]["/v1/jobs/{jobId}"]["get"]
    op["description"] += "\nA job is kept for seven days after it ends.\n"
    found = promises.problems(doc)
    assert found == ["no entry for the promise in getJob: 'A job is kept for seven days after "
                     "it ends.'"]


def test_a_promise_changed_under_its_entry_fails():
    doc = copy.deepcopy(spec.load_spec())
    op = doc["paths"]["/v1/jobs/{jobId}/cancel"]["post"]
    op["description"] = op["description"].replace("can no longer be canceled",
                                                  "can still be canceled")
    found = promises.problems(doc)
    assert any("its quote is no longer in cancelJob" in p for p in found), found
    assert any(p.startswith("no entry for the promise in cancelJob") for p in found), found


def test_new_error_codes_and_enums_are_promises_too():
    doc = copy.deepcopy(spec.load_spec())
    doc["x-error-codes"]["TEAPOT"] = {"status": 418, "description": "Short and stout."}
    doc["components"]["schemas"]["Flavour"] = {"type": "string", "enum": ["a", "b"]}
    found = promises.problems(doc)
    assert any("x-error-codes.TEAPOT" in p for p in found)
    assert any("enum.Flavour" in p for p in found)


def test_the_sentence_rule_keeps_titles_out_and_splits_bullets_and_rows():
    items = list(promises._items("## Title\nOne sentence is here. Another one answers 200.\n"
                                 "- *A bullet*: kept.\n| code | status |\n|---|---|\n"
                                 "| `X` | 409 |\n"))
    assert items == ["One sentence is here.", "Another one answers 200.", "*A bullet*: kept.",
                     "| `X` | 409 |"]
    assert not promises.is_promise("Under a gateway, append the path.", [])
    assert promises.is_promise("It answers 409.", [])


def test_an_entry_naming_no_check_or_two_kinds_fails():
    entry = {"id": "x", "where": "getJob", "quote": "Returns a job's current state.",
             "checks": ["no_such_check"], "schema": "and schema"}
    found = promises.problems(entries=[entry], check_names=["d7_cancel"])
    assert any("no check is named 'no_such_check'" in p for p in found)
    assert any("exactly one of" in p for p in found)


def test_the_coverage_figure():
    c = promises.coverage()
    assert c["promises"] == c["check"] + c["schema"] + c["notObservable"]
    assert c["check"] > c["notObservable"] > 0 and c["schema"] > 0
    assert all(e["reason"] and e["instead"] for e in c["notObservableList"])
    assert promises.coverage_line().startswith(f"{c['promises']} promises of openapi.yaml")


def test_the_rules_page_carries_the_inventory():
    from layers_kit.conformance.catalogue import render

    page = render()
    assert "## Promises of the contract" in page and promises.coverage_line() in page


def test_every_operation_with_a_body_has_schema_breaking_cases():
    doc = spec.load_spec()
    with_body = {op["operationId"] for item in doc["paths"].values()
                 for op in item.values() if isinstance(op, dict) and op.get("requestBody")}
    assert set(bodies.CASES) == with_body
    assert all(len(cases) >= 3 for cases in bodies.CASES.values())


def test_every_post_the_kit_schedules_is_a_year_ahead():
    from layers_kit.conformance import schema_phase

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for made in (future_date(now), schema_phase.future_date(now)):
        when = dt.datetime.fromisoformat(made.replace("Z", "+00:00"))
        assert when - now >= dt.timedelta(days=365)
