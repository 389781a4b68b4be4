"""`layers-contract diff` (D12): one breaking pair per rule, one non-breaking pair per allowed
change, the renames and unions that must compare equal, and the exit codes of the command."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from xml.etree import ElementTree as ET

import pytest
import yaml

from layers_kit.contract import cli
from layers_kit.contract.diff import diff
from layers_kit.contract.document import Document
from layers_kit.contract.rules import RULES

Mutation = Callable[[dict], None]


def base_doc() -> dict:
    """A small contract with one of everything the rules look at."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1.0.0"},
        "servers": [{"url": "https://api.example.com"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/things/{thingId}": {
                "get": {
                    "operationId": "getThing",
                    "summary": "Get a thing",
                    "x-required-scopes": ["things:read"],
                    "parameters": [
                        {"$ref": "#/components/parameters/ThingId"},
                        {"name": "view", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["full", "short"],
                                    "default": "full"}},
                    ],
                    "responses": {
                        "200": {"description": "the thing",
                                "headers": {"X-Request-Id": {"required": True,
                                                             "schema": {"type": "string"}}},
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}}}},
                        "404": {"$ref": "#/components/responses/NotFound"},
                    },
                },
                "post": {
                    "operationId": "updateThing",
                    "x-required-scopes": ["things:write"],
                    "parameters": [{"$ref": "#/components/parameters/ThingId"}],
                    "requestBody": {"required": False, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ThingUpdate"}}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Thing"}}}},
                        "422": {"$ref": "#/components/responses/Invalid"},
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header",
                                           "name": "X-Api-Key"}},
            "parameters": {"ThingId": {"name": "thingId", "in": "path", "required": True,
                                       "schema": {"type": "string", "pattern": "^thg_[a-z]+$"}}},
            "schemas": {
                "Thing": {
                    "type": "object", "required": ["id", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"type": "string", "enum": ["draft", "done"]},
                        "size": {"type": "integer", "nullable": False},
                        "createdAt": {"type": "string", "format": "date-time"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "ThingUpdate": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 100,
                                 "pattern": "^[a-z ]+$", "nullable": True},
                        "kind": {"type": "string", "enum": ["a", "b", "c"]},
                        "labels": {"type": "array", "maxItems": 10, "minItems": 0,
                                   "items": {"type": "string"}},
                        "priority": {"type": "integer", "minimum": 0, "maximum": 10,
                                     "default": 5},
                        "note": {"type": "string"},
                        "meta": {"type": "object"},
                    },
                },
                "ErrorBody": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {
                        "type": "object", "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string",
                                     "enum": ["NOT_FOUND", "VALIDATION_FAILED"]},
                            "message": {"type": "string"},
                            "details": {"type": "object",
                                        "properties": {"issues": {"type": "array"}}},
                        }}},
                },
            },
            "responses": {
                "NotFound": {"description": "missing", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorBody"}}}},
                "Invalid": {"description": "bad", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorBody"}}}},
            },
        },
    }


THING = "/paths/~1v1~1things~1{thingId}"
SCHEMAS = ("components", "schemas")


def _at(doc: dict, *path: str) -> dict:
    for part in path:
        doc = doc[part]
    return doc


def run(mutate: Mutation, base_mutate: Mutation | None = None):
    base = base_doc()
    if base_mutate:
        base_mutate(base)
    new = copy.deepcopy(base)
    mutate(new)
    return diff(Document(base, "BASE"), Document(new, "NEW"))


def props(doc: dict, name: str) -> dict:
    return _at(doc, *SCHEMAS, name, "properties")


# ---- one breaking pair per breaking rule ------------------------------------------------------
BREAKING: dict[str, Mutation] = {
    "path-removed": lambda d: d["paths"].__setitem__(
        "/v1/others/{thingId}", d["paths"].pop("/v1/things/{thingId}")),
    "operation-removed": lambda d: d["paths"]["/v1/things/{thingId}"].pop("post"),
    "operation-id-changed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"].update(
        operationId="fetchThing"),
    "server-removed": lambda d: d.update(servers=[{"url": "https://api2.example.com"}]),
    "security-changed": lambda d: d.update(security=[{"bearer": []}]),
    "security-scheme-changed": lambda d: d["components"]["securitySchemes"]["apiKey"].update(
        name="X-Key"),
    "required-scope-changed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"].update(
        {"x-required-scopes": ["things:admin"]}),
    "parameter-removed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"]["parameters"].pop(),
    "parameter-required-added": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "parameters"].append({"name": "org", "in": "query", "required": True,
                              "schema": {"type": "string"}}),
    "parameter-became-required": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "parameters"][1].update(required=True),
    "request-body-required-added": lambda d: d["paths"]["/v1/things/{thingId}"]["get"].update(
        requestBody={"required": True, "content": {"application/json": {
            "schema": {"type": "object"}}}}),
    "request-body-became-required": lambda d: d["paths"]["/v1/things/{thingId}"]["post"][
        "requestBody"].update(required=True),
    "request-body-removed": lambda d: d["paths"]["/v1/things/{thingId}"]["post"].pop(
        "requestBody"),
    "request-media-type-removed": lambda d: d["paths"]["/v1/things/{thingId}"]["post"][
        "requestBody"].update(content={"application/xml": {"schema": {"type": "object"}}}),
    "request-property-removed": lambda d: props(d, "ThingUpdate").pop("note"),
    "request-property-required-added": lambda d: (
        props(d, "ThingUpdate").update(owner={"type": "string"}),
        _at(d, *SCHEMAS, "ThingUpdate").update(required=["owner"])),
    "request-property-became-required": lambda d: _at(d, *SCHEMAS, "ThingUpdate").update(
        required=["name"]),
    "request-additional-properties-forbidden": lambda d: props(d, "ThingUpdate")["meta"].update(
        additionalProperties=False),
    "request-enum-value-removed": lambda d: props(d, "ThingUpdate")["kind"].update(
        enum=["a", "b"]),
    "request-enum-added": lambda d: props(d, "ThingUpdate")["note"].update(enum=["x"]),
    "request-max-decreased": lambda d: props(d, "ThingUpdate")["name"].update(maxLength=50),
    "request-min-increased": lambda d: props(d, "ThingUpdate")["labels"].update(minItems=1),
    "request-pattern-changed": lambda d: props(d, "ThingUpdate")["name"].update(
        pattern="^[a-z]+$"),
    "request-nullable-removed": lambda d: props(d, "ThingUpdate")["name"].pop("nullable"),
    "response-status-removed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "responses"].pop("404"),
    "response-media-type-removed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "responses"]["200"].update(content={"text/plain": {"schema": {"type": "string"}}}),
    "response-header-removed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "responses"]["200"].pop("headers"),
    "response-property-removed": lambda d: props(d, "Thing").pop("createdAt"),
    "response-property-no-longer-required": lambda d: _at(d, *SCHEMAS, "Thing").update(
        required=["id"]),
    "response-enum-value-added": lambda d: props(d, "Thing")["status"]["enum"].append("archived"),
    "response-enum-removed": lambda d: props(d, "Thing")["status"].pop("enum"),
    "response-nullable-added": lambda d: props(d, "Thing")["size"].update(nullable=True),
    "error-code-added": lambda d: _at(d, *SCHEMAS, "ErrorBody", "properties", "error",
                                      "properties", "code")["enum"].append("RATE_LIMITED"),
    "error-code-removed": lambda d: _at(d, *SCHEMAS, "ErrorBody", "properties", "error",
                                        "properties", "code").update(enum=["NOT_FOUND"]),
    "type-changed": lambda d: props(d, "Thing")["size"].update(type="string"),
    "format-changed": lambda d: props(d, "Thing")["createdAt"].update(format="date"),
    "default-changed": lambda d: props(d, "ThingUpdate")["priority"].update(default=3),
}

# ---- one non-breaking pair per allowed change --------------------------------------------------
ALLOWED: dict[str, Mutation] = {
    "path-added": lambda d: d["paths"].__setitem__("/v1/widgets", {"get": {
        "operationId": "listWidgets", "responses": {"200": {"description": "ok"}}}}),
    "operation-added": lambda d: d["paths"]["/v1/things/{thingId}"].__setitem__("delete", {
        "operationId": "deleteThing", "responses": {"204": {"description": "gone"}}}),
    "operation-deprecated": lambda d: d["paths"]["/v1/things/{thingId}"]["get"].update(
        deprecated=True),
    "server-added": lambda d: d["servers"].append({"url": "http://127.0.0.1:4010"}),
    "security-alternative-added": lambda d: d.update(security=[{"apiKey": []},
                                                               {"bearer": []}]),
    "parameter-added": lambda d: d["paths"]["/v1/things/{thingId}"]["get"]["parameters"].append(
        {"name": "lang", "in": "query", "schema": {"type": "string"}}),
    "parameter-became-optional": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "parameters"].append({"name": "x", "in": "header", "required": False,
                              "schema": {"type": "string"}}),
    "request-media-type-added": lambda d: d["paths"]["/v1/things/{thingId}"]["post"][
        "requestBody"]["content"].__setitem__("application/merge-patch+json", {
            "schema": {"type": "object"}}),
    "request-property-added": lambda d: props(d, "ThingUpdate").update(color={"type": "string"}),
    "request-property-became-optional": lambda d: _at(d, *SCHEMAS, "ThingUpdate").pop(
        "required"),
    "request-enum-value-added": lambda d: props(d, "ThingUpdate")["kind"]["enum"].append("d"),
    "request-constraint-relaxed": lambda d: props(d, "ThingUpdate")["name"].update(
        maxLength=200),
    "request-pattern-removed": lambda d: props(d, "ThingUpdate")["name"].pop("pattern"),
    "response-status-added": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "responses"].__setitem__("429", {"description": "slow down"}),
    "response-media-type-added": lambda d: d["paths"]["/v1/things/{thingId}"]["get"][
        "responses"]["200"]["content"].__setitem__("application/yaml", {
            "schema": {"type": "object"}}),
    "response-header-added": lambda d: d["paths"]["/v1/things/{thingId}"]["get"]["responses"][
        "200"]["headers"].__setitem__("ETag", {"schema": {"type": "string"}}),
    "response-property-added": lambda d: props(d, "Thing").update(color={"type": "string"}),
    "response-property-became-required": lambda d: _at(d, *SCHEMAS, "Thing").update(
        required=["id", "status", "size"]),
    "response-enum-value-removed": lambda d: props(d, "Thing")["status"].update(enum=["done"]),
    "response-constraint-changed": lambda d: props(d, "Thing")["id"].update(maxLength=64),
    "response-error-code-added": lambda d: _at(
        d, *SCHEMAS, "ErrorBody", "properties", "error", "properties", "code")["enum"].append(
        "RATE_LIMITED"),
    "response-variant-narrowed": lambda d: (
        _at(d, *SCHEMAS).__setitem__("NotFoundError", {
            "type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": ["NOT_FOUND"]},
                    "message": {"type": "string"},
                    "details": {"type": "object"}}}}}),
        d["components"]["responses"]["NotFound"]["content"]["application/json"].update(
            schema={"$ref": "#/components/schemas/NotFoundError"})),
    "type-widened": lambda d: props(d, "ThingUpdate")["priority"].update(type="number"),
    "default-added": lambda d: props(d, "ThingUpdate")["note"].update(default=""),
    "documentation-changed": lambda d: d["paths"]["/v1/things/{thingId}"]["get"].update(
        summary="Read a thing", description="More words.", **{"x-codeSamples": [
            {"lang": "curl", "source": "curl ..."}]}),
}


def test_every_rule_has_its_pair():
    """A rule without a pair is a rule nobody proved (D12: a test per rule)."""
    assert set(BREAKING) | set(ALLOWED) == set(RULES)
    assert all(RULES[r].breaking for r in BREAKING)
    assert not any(RULES[r].breaking for r in ALLOWED)


@pytest.mark.parametrize("rule", sorted(BREAKING))
def test_breaking_change_is_caught(rule):
    result = run(BREAKING[rule])
    hits = [c for c in result.changes if c.rule == rule]
    assert hits, f"{rule} not reported; got {[c.rule for c in result.changes]}"
    assert all(c.breaking and c.pointer.startswith("/") for c in hits)
    assert result.gate_fails


@pytest.mark.parametrize("rule", sorted(ALLOWED))
def test_allowed_change_is_not_breaking(rule):
    base_mutate = None
    if rule == "parameter-became-optional":  # needs a required parameter in BASE
        def base_mutate(d):
            d["paths"]["/v1/things/{thingId}"]["get"]["parameters"].append(
                {"name": "x", "in": "header", "required": True, "schema": {"type": "string"}})

        def mutate(d):
            d["paths"]["/v1/things/{thingId}"]["get"]["parameters"][-1]["required"] = False
    elif rule == "response-error-code-added":  # a code the contract's registry already had
        def base_mutate(d):
            d["x-error-codes"] = {"RATE_LIMITED": {"status": 429}}
        mutate = ALLOWED[rule]
    elif rule == "request-property-became-optional":
        def base_mutate(d):
            _at(d, *SCHEMAS, "ThingUpdate")["required"] = ["note"]
        mutate = ALLOWED[rule]
    else:
        mutate = ALLOWED[rule]
    result = run(mutate, base_mutate)
    assert rule in {c.rule for c in result.changes}, [c.rule for c in result.changes]
    assert result.breaking == [], [(c.rule, c.message) for c in result.breaking]
    assert not result.gate_fails


def test_narrowed_tag_never_excuses_a_required_property():
    def narrow(d):
        ALLOWED["response-variant-narrowed"](d)
        err = _at(d, *SCHEMAS, "NotFoundError", "properties", "error")
        err["properties"].pop("message")
        err["required"] = ["code"]
    rules = {c.rule for c in run(narrow).breaking}
    assert "response-property-removed" in rules


def test_pointer_names_the_field_a_client_reads():
    result = run(BREAKING["response-property-removed"])
    pointers = {c.pointer for c in result.changes if c.rule == "response-property-removed"}
    assert (f"{THING}/get/responses/200/content/application~1json/schema/properties/createdAt"
            in pointers)
    assert all(c.in_base for c in result.changes if c.rule == "response-property-removed")


# ---- what 1.1.0's reshaping for generated clients does: nothing on the wire, nothing breaking -
def rename_components(d: dict) -> None:
    """Thing -> ThingResource, ThingId parameter -> ThingIdParam, ErrorBody -> ApiError."""
    text = json.dumps(d)
    for old, new in (("schemas/Thing\"", "schemas/ThingResource\""),
                     ("parameters/ThingId\"", "parameters/ThingIdParam\""),
                     ("schemas/ErrorBody\"", "schemas/ApiError\"")):
        text = text.replace(old, new)
    d.clear()
    d.update(json.loads(text))
    comp = d["components"]
    comp["schemas"]["ThingResource"] = comp["schemas"].pop("Thing")
    comp["schemas"]["ApiError"] = comp["schemas"].pop("ErrorBody")
    comp["parameters"]["ThingIdParam"] = comp["parameters"].pop("ThingId")


def error_union(d: dict) -> None:
    """One schema per error code joined in a oneOf with a discriminator: the same wire shape."""
    schemas = d["components"]["schemas"]
    base = schemas.pop("ErrorBody")
    for code, details in (("NOT_FOUND", {}), ("VALIDATION_FAILED",
                                              {"issues": {"type": "array"}})):
        variant = copy.deepcopy(base)
        inner = variant["properties"]["error"]
        inner["properties"]["code"] = {"type": "string", "enum": [code]}
        inner["properties"]["details"] = {"type": "object", "properties": details}
        variant["description"] = f"The {code} error."
        schemas[f"{code.title().replace('_', '')}Error"] = variant
    schemas["ErrorBody"] = {
        "oneOf": [{"$ref": "#/components/schemas/NotFoundError"},
                  {"$ref": "#/components/schemas/ValidationFailedError"}],
        "discriminator": {"propertyName": "code"}}


def test_component_renames_are_not_changes():
    result = run(rename_components)
    assert result.changes == []


def test_error_union_with_the_same_wire_shape_is_not_breaking():
    result = run(error_union)
    assert result.breaking == [], [(c.rule, c.pointer, c.message) for c in result.breaking]


def test_path_parameter_renamed_is_the_same_url():
    def rename(d):
        d["paths"]["/v1/things/{id}"] = d["paths"].pop("/v1/things/{thingId}")
        d["components"]["parameters"]["ThingId"]["name"] = "id"
    assert run(rename).breaking == []


def test_descriptions_examples_and_extensions_are_documentation():
    def document(d):
        props(d, "Thing")["status"].update(description="Where it is.",
                                           **{"x-enum-descriptions": {"draft": "d"}})
        d["info"]["license"] = {"name": "Proprietary"}
        d["paths"]["/v1/things/{thingId}"]["get"]["responses"]["200"]["content"][
            "application/json"]["example"] = {"id": "x", "status": "done"}
    result = run(document)
    assert result.changes and {c.rule for c in result.changes} == {"documentation-changed"}


def test_a_raised_major_version_announces_breaking_changes():
    def v2(d):
        props(d, "Thing").pop("createdAt")
        d["info"]["version"] = "2.0.0"
    result = run(v2)
    assert result.breaking and not result.gate_fails


# ---- the command ---------------------------------------------------------------------------
def _write(tmp_path, name: str, doc: dict):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_command_exit_codes_and_formats(tmp_path, capsys):
    base = _write(tmp_path, "base.yaml", base_doc())
    broken = base_doc()
    BREAKING["response-property-removed"](broken)
    new = _write(tmp_path, "new.yaml", broken)

    assert cli.main(["diff", str(base), str(base)]) == 0
    assert "0 change(s), 0 breaking" in capsys.readouterr().out

    assert cli.main(["diff", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "BREAKING  response-property-removed" in out and "FAIL" in out

    assert cli.main(["diff", str(base), str(new), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["gate"] == "fail" and data["breaking"] >= 1
    assert {"rule", "breaking", "pointer", "document", "message"} <= set(data["changes"][0])

    junit = tmp_path / "diff.xml"
    assert cli.main(["diff", str(base), str(new), "--format", "junit",
                     "--output", str(junit)]) == 1
    suite = ET.parse(junit).getroot()
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert {c.get("classname") for c in failed} >= {"D12", "response-property-removed"}

    broken["info"]["version"] = "2.0.0"
    assert cli.main(["diff", str(base), str(_write(tmp_path, "v2.yaml", broken))]) == 0


def test_the_command_as_a_process_gates_with_its_exit_status(tmp_path):
    """What CI runs: `layers-contract diff` in its own process, exit 1 and a JUnit report."""
    import subprocess
    import sys

    base = _write(tmp_path, "base.yaml", base_doc())
    broken = base_doc()
    BREAKING["request-enum-value-removed"](broken)
    new = _write(tmp_path, "new.yaml", broken)
    report = tmp_path / "reports" / "contract-diff.xml"
    done = subprocess.run([sys.executable, "-m", "layers_kit.contract", "diff", str(base), str(new),
                           "--format", "junit", "--output", str(report)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL: 1 breaking change(s) within major version 1" in done.stdout
    failures = ET.parse(report).getroot().iter("failure")
    assert {f.get("type") for f in failures} >= {"request-enum-value-removed"}


def test_command_refuses_what_it_cannot_read(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("just: text\n")
    assert cli.main(["diff", str(bad), str(bad)]) == 2
    assert "not an OpenAPI document" in capsys.readouterr().err
    assert cli.main(["diff", str(tmp_path / "missing.yaml"), str(bad)]) == 2


def test_readme_lists_every_rule_in_its_column():
    """The README's rule table is what partners read: it must match the rules the code applies."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text[text.index("**The rules**"):text.index("Exit status of `diff`")]
    breaking, allowed = set(), set()
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and "---" not in line:
            breaking |= set(re.findall(r"`([a-z0-9-]+)`", cells[1])) & set(RULES)
            allowed |= set(re.findall(r"`([a-z0-9-]+)`", cells[2])) & set(RULES)
    assert breaking == {r for r in RULES if RULES[r].breaking}
    assert allowed == {r for r in RULES if not RULES[r].breaking}


def test_format_dropped_on_a_request_or_added_on_a_response_is_not_breaking():
    def loosen_request(d):
        props(d, "ThingUpdate")["note"]["format"] = "email"
    result = run(lambda d: props(d, "ThingUpdate")["note"].pop("format"), loosen_request)
    assert {c.rule for c in result.changes} == {"request-constraint-relaxed"}
    result = run(lambda d: props(d, "Thing")["id"].update(format="uuid"))
    assert {c.rule for c in result.changes} == {"response-constraint-changed"}
    result = run(lambda d: props(d, "Thing")["createdAt"].pop("format"))
    assert {c.rule for c in result.changes} == {"format-changed"}
