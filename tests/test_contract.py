"""The contract's own tests: openapi.yaml is valid, complete and self-consistent."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from layers_kit.contract import operations, spec
from layers_kit.contract.spec import resolve

DOC = spec.load_spec()
OPS = {op.operation_id: {"method": op.method, "path": op.path, "operation": op.node}
       for op in operations.table()}

# D2: the operations and nothing else.
D2_OPERATIONS = {
    "regenerateContent": ("POST", "/v1/content/{containerId}/regenerate", "content:write"),
    "getContent": ("GET", "/v1/content/{containerId}", "content:read"),
    "getContentAsset": ("GET", "/v1/content/{containerId}/assets/{assetId}", "content:read"),
    "generateContent": ("POST", "/v1/projects/{projectId}/content", "content:write"),
    "approveContent": ("POST", "/v1/content/{containerId}/approve", "content:approve"),
    "scheduleContent": ("POST", "/v1/content/{containerId}/schedule", "publish:write"),
    "getScheduledPost": ("GET", "/v1/scheduled-posts/{scheduledPostId}", "publish:read"),
    "getJob": ("GET", "/v1/jobs/{jobId}", "jobs:read"),
    "cancelJob": ("POST", "/v1/jobs/{jobId}/cancel", "jobs:cancel"),
    "getReviewPolicy": ("GET", "/v1/projects/{projectId}/content-review-policy", "content:read"),
    "updateReviewPolicy": ("PATCH", "/v1/projects/{projectId}/content-review-policy",
                           "content:approve"),
}


def all_refs(node: Any, path: str = "#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield path, v
            else:
                yield from all_refs(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_refs(v, f"{path}/{i}")


def examples():
    """(where, schema, example) for every example in the document."""
    for op_id, o in OPS.items():
        op = o["operation"]
        body = resolve(op.get("requestBody", {}))
        media_sets = [(f"{op_id} request", body.get("content", {}))]
        for status, resp in op["responses"].items():
            media_sets.append((f"{op_id} {status}", resolve(resp).get("content", {})))
        for where, content in media_sets:
            for media in content.values():
                schema = media["schema"]
                if "example" in media:
                    yield where, schema, media["example"]
                for name, ex in (media.get("examples") or {}).items():
                    yield f"{where} {name}", schema, resolve(ex)["value"]
    for name, param in DOC["components"]["parameters"].items():
        if "example" in param:
            yield f"parameter {name}", param["schema"], param["example"]


def test_document_is_valid_openapi_303():
    assert DOC["openapi"] == "3.0.3"
    validate(DOC)


def test_operation_ids_are_exactly_those_of_d2():
    assert set(OPS) == set(D2_OPERATIONS)
    for op_id, (method, path, scope) in D2_OPERATIONS.items():
        assert (OPS[op_id]["method"], OPS[op_id]["path"]) == (method, path), op_id
        assert OPS[op_id]["operation"]["x-required-scopes"] == [scope], op_id


@pytest.mark.parametrize("op_id", sorted(D2_OPERATIONS))
def test_operation_is_documented_for_publication(op_id):
    op = OPS[op_id]["operation"]
    assert op.get("summary") and op.get("description") and op.get("tags"), op_id
    security = op.get("security", DOC["security"])
    assert {"apiKey": []} in security and {"bearer": []} in security
    assert op["x-rate-limit-class"] in {"read", "light_write", "job_start"}


@pytest.mark.parametrize("op_id", sorted(D2_OPERATIONS))
def test_operation_lists_the_d5_errors_it_can_return(op_id):
    o = OPS[op_id]
    statuses = set(o["operation"]["responses"])
    assert {"401", "403", "404", "422", "429", "500", "502", "503", "504"} <= statuses, op_id
    if "requestBody" in o["operation"]:
        assert {"413", "415"} <= statuses, op_id
    if o["method"] in ("POST", "PATCH"):
        assert "409" in statuses, f"{op_id}: idempotency conflicts are 409"
        names = [resolve(p)["name"] for p in o["operation"]["parameters"]]
        assert "Idempotency-Key" in names, op_id


@pytest.mark.parametrize("op_id", sorted(D2_OPERATIONS))
def test_every_response_has_a_schema_an_example_and_x_request_id(op_id):
    for status, resp in OPS[op_id]["operation"]["responses"].items():
        resp = resolve(resp)
        assert "X-Request-Id" in resp.get("headers", {}), f"{op_id} {status}"
        if status == "304":
            continue
        media = resp["content"]["application/json"]
        assert "schema" in media, f"{op_id} {status}"
        assert "example" in media or media.get("examples"), f"{op_id} {status} has no example"


@pytest.mark.parametrize("where,schema,example", list(examples()),
                         ids=[w for w, _, _ in examples()])
def test_every_example_validates_against_its_schema(where, schema, example):
    validator = OAS30Validator({**resolve(schema), "components": DOC["components"]}
                               if "$ref" not in schema else
                               {"$ref": schema["$ref"], "components": DOC["components"]})
    errors = [e.message for e in validator.iter_errors(example)]
    assert not errors, f"{where}: {errors}"


def test_every_ref_resolves():
    refs = list(all_refs(DOC))
    assert len(refs) > 50
    for where, ref in refs:
        assert ref.startswith("#/"), where
        resolve({"$ref": ref})


def test_links_name_real_operations_and_parameters():
    seen = 0
    for op_id, o in OPS.items():
        for status, resp in o["operation"]["responses"].items():
            for name, link in resolve(resp).get("links", {}).items():
                seen += 1
                target = OPS[link["operationId"]]["operation"]
                params = {resolve(p)["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= params, f"{op_id} {status} {name}"
    assert seen >= 10


def test_202_responses_link_to_get_job_and_get_content():
    for op_id in ("regenerateContent", "generateContent"):
        links = resolve(OPS[op_id]["operation"]["responses"]["202"])["links"]
        assert {link["operationId"] for link in links.values()} >= {"getJob", "getContent"}
        headers = resolve(OPS[op_id]["operation"]["responses"]["202"])["headers"]
        assert {"Location", "Idempotent-Replayed", "X-Request-Id"} <= set(headers)


def test_declared_headers_of_d5_d6_d7():
    job_200 = resolve(OPS["getJob"]["operation"]["responses"]["200"])
    assert "ETag" in job_200["headers"]
    for o in OPS.values():
        if "429" in o["operation"]["responses"]:
            assert "Retry-After" in resolve(o["operation"]["responses"]["429"])["headers"]
    in_progress = resolve(OPS["regenerateContent"]["operation"]["responses"]["409"])
    assert "Retry-After" in in_progress["headers"]


def _leaves(node: Any, where: str, seen: frozenset = frozenset()):
    """Every (where, schema) reachable from a request schema, refs followed."""
    if isinstance(node, dict) and "$ref" in node:
        if node["$ref"] in seen:
            return
        seen = seen | {node["$ref"]}
        node = resolve(node)
    if not isinstance(node, dict):
        return
    yield where, node
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(node.get(key, [])):
            yield from _leaves(sub, f"{where}/{key}/{i}", seen)
    for name, sub in node.get("properties", {}).items():
        yield from _leaves(sub, f"{where}.{name}", seen)
    if "items" in node:
        yield from _leaves(node["items"], f"{where}[]", seen)


def request_schemas():
    for op_id, o in OPS.items():
        body = resolve(o["operation"].get("requestBody", {}))
        for media in body.get("content", {}).values():
            yield op_id, media["schema"]
        for param in o["operation"].get("parameters", []):
            yield f"{op_id} {resolve(param)['name']}", resolve(param)["schema"]


@pytest.mark.parametrize("where,schema", list(request_schemas()),
                         ids=[w for w, _ in request_schemas()])
def test_request_schemas_are_closed_and_bounded(where, schema):
    """A fuzzer's invalid input must be invalid by the spec too: closed objects, bounded values."""
    for path, node in _leaves(schema, where):
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} is not closed"
        if node.get("type") == "string":
            assert {"maxLength", "pattern", "enum", "format"} & set(node), f"{path} unbounded"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path} unbounded"
        if node.get("type") == "integer":
            assert "maximum" in node, f"{path} unbounded"


def test_optional_bodies_are_really_optional():
    """LIBRARY-NOTES: Connexion demands a body unless the schema has a default."""
    for op_id in ("regenerateContent", "approveContent"):
        body = OPS[op_id]["operation"]["requestBody"]
        assert body["required"] is False
        schema = resolve(body["content"]["application/json"]["schema"])
        assert schema.get("default") == {}


def test_error_codes_of_the_spec_are_those_of_d5():
    from layers_kit.mock.domain.errors import STATUS_BY_CODE

    registry = DOC["x-error-codes"]
    assert {code: entry["status"] for code, entry in registry.items()} == STATUS_BY_CODE
    # METHOD_NOT_ALLOWED answers a method a path does not have: no operation can list it.
    assert set(error_schemas()) == set(STATUS_BY_CODE) - {"METHOD_NOT_ALLOWED"}


def test_ids_follow_d3_patterns():
    import re

    schemas = DOC["components"]["schemas"]
    assert re.match(schemas["JobId"]["pattern"], "job_01HXZ9G7KMV2QX8Y1S5RJW3B7T")
    assert not re.match(schemas["JobId"]["pattern"], "job_01HXZ9G7KMV2QX8Y1S5RJW3B7I")  # no I
    cid = resolve(DOC["components"]["parameters"]["ContainerIdParam"])["schema"]["pattern"]
    assert re.match(cid, "cnt_6f1c2a54-8d3e-4b7a-9c21-0e5d4f3a2b1c")
    assert re.match(cid, "6f1c2a54-8d3e-4b7a-9c21-0e5d4f3a2b1c")  # D3: the bare UUID too
    assert not re.match(cid, "cnt_6f1c2a54-8d3e-3b7a-9c21-0e5d4f3a2b1c")  # not v4


# ---- an SDK-grade contract: what generated clients rely on ------------------------------------

SCHEMAS = DOC["components"]["schemas"]


def error_schemas() -> dict[str, str]:
    """Error code -> the name of its schema (an object whose `code` is a one-value enum)."""
    out = {}
    for name, schema in SCHEMAS.items():
        codes = resolve(schema.get("properties", {}).get("code", {})).get("enum", [])
        if name.endswith("Error") and len(codes) == 1:
            out[codes[0]] = name
    return out


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _codes_of(error_node: dict) -> set[str]:
    """The error codes an envelope's `error` admits: one member, or a discriminated oneOf."""
    by_name = {v: k for k, v in error_schemas().items()}
    target = resolve(error_node)
    if "oneOf" in target:
        members = [_name(m["$ref"]) for m in target["oneOf"]]
        disc = target["discriminator"]
        assert disc["propertyName"] == "code"
        assert {k: _name(v) for k, v in disc["mapping"].items()} == {by_name[m]: m for m in members}
        return {by_name[m] for m in members}
    return {by_name[_name(error_node["$ref"])]}


@pytest.mark.parametrize("op_id", sorted(D2_OPERATIONS))
def test_every_error_response_is_the_discriminated_union_of_its_codes(op_id):
    """D5, typed for generated clients: each 4xx/5xx names exactly the codes of its status
    (INTERNAL travels with every 5xx: x-error-codes' alsoStatuses)."""
    registry = DOC["x-error-codes"]

    def statuses(code: str) -> set[int]:
        return {registry[code]["status"], *registry[code].get("alsoStatuses", [])}

    for status, resp in OPS[op_id]["operation"]["responses"].items():
        if int(status) < 400:
            continue
        envelope = resolve(resolve(resp)["content"]["application/json"]["schema"])
        assert envelope["required"] == ["error"], f"{op_id} {status}"
        codes = _codes_of(envelope["properties"]["error"])
        assert all(int(status) in statuses(c) for c in codes), f"{op_id} {status}: {codes}"
        examples = resolve(resp)["content"]["application/json"]
        shown = ([examples["example"]] if "example" in examples else []) + \
            [resolve(e)["value"] for e in (examples.get("examples") or {}).values()]
        assert {e["error"]["code"] for e in shown} <= codes, f"{op_id} {status}"


def test_error_details_are_declared_and_typed():
    """A generated client reads details.cost as an integer, issues as a list, and so on."""
    def details(code):
        return resolve(SCHEMAS[error_schemas()[code]]["properties"]["details"])

    billing = details("BILLING_EXHAUSTED")
    assert billing["required"] == ["cost", "available"]
    assert billing["properties"]["cost"]["type"] == "integer"
    assert billing["properties"]["available"]["type"] == "integer"
    assert details("VALIDATION_FAILED")["required"] == ["issues"]
    assert details("FORBIDDEN_SCOPE")["required"] == ["requiredScope"]
    assert details("MODERATION_BLOCKED")["required"] == ["fields"]
    assert set(details("CONFLICT")["properties"]) == {"jobId", "subcode"}
    for code in ("VALIDATION_FAILED", "FORBIDDEN_SCOPE", "BILLING_EXHAUSTED",
                 "MODERATION_BLOCKED"):
        assert "details" in SCHEMAS[error_schemas()[code]]["required"], code


def test_names_read_well_in_generated_code():
    """No schema named Error; no parameter component shares a schema's name."""
    assert "Error" not in SCHEMAS
    assert not set(DOC["components"]["parameters"]) & set(SCHEMAS)


def _inline_named_things(node: Any, where: str):
    """Objects and multi-value enums below a component's top level that are not $refs."""
    if not isinstance(node, dict) or "$ref" in node:
        return
    if "properties" in node or "oneOf" in node or "enum" in node:
        yield where
    for name, sub in node.get("properties", {}).items():
        yield from _inline_named_things(sub, f"{where}.{name}")
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(node.get(key, [])):
            yield from _inline_named_things(sub, f"{where}/{key}/{i}")
    if "items" in node:
        yield from _inline_named_things(node["items"], f"{where}[]")


def test_every_object_and_enum_has_a_component_name():
    """Generators name inline objects and enums Status1, Code1, Policy2: name them all.

    One-value enums too (the error codes, the policy variants): datamodel-code-generator
    numbers them otherwise."""
    inline = []
    for name, schema in SCHEMAS.items():
        for key in ("properties", "items"):
            subs = schema.get(key, {})
            for prop, sub in (subs.items() if key == "properties" else [("[]", subs)]):
                inline += _inline_named_things(sub, f"{name}.{prop}")
    for op_id, o in OPS.items():
        op = o["operation"]
        media = [resolve(op.get("requestBody", {})).get("content", {})]
        media += [resolve(r).get("content", {}) for r in op["responses"].values()]
        for content in media:
            for m in content.values():
                inline += _inline_named_things(m["schema"], f"{op_id} body")
    assert not inline


def test_new_brief_requires_topic_and_matches_brief_update():
    new, update = SCHEMAS["NewBrief"], SCHEMAS["BriefUpdate"]
    assert new["required"] == ["topic"] and "allOf" not in new
    assert new["additionalProperties"] is False
    strip = {k: {kk: vv for kk, vv in v.items() if kk != "description"}
             for k, v in update["properties"].items()}
    assert {k: {kk: vv for kk, vv in v.items() if kk != "description"}
            for k, v in new["properties"].items()} == strip


def test_review_policy_variants_are_discriminated_by_policy():
    union = SCHEMAS["ReviewPolicyUpdate"]
    assert union["discriminator"]["propertyName"] == "policy"
    for value, ref in union["discriminator"]["mapping"].items():
        assert resolve(resolve({"$ref": ref})["properties"]["policy"])["enum"] == [value]
    assert set(union["discriminator"]["mapping"]) == set(SCHEMAS["ReviewPolicyKind"]["enum"])


@pytest.mark.parametrize("name", ["JobStatus", "JobStage", "JobFailureCode", "JobKind",
                                  "ContainerStatus", "ApprovalStatus", "CancelRefusalReason",
                                  "ReviewPolicyKind", "Format", "ConflictSubcode"])
def test_enums_say_what_each_value_means(name):
    """A list parallel to `enum` (the form OpenAPI Generator and datamodel-code-generator read)."""
    schema = SCHEMAS[name]
    descriptions = schema["x-enum-descriptions"]
    assert len(descriptions) == len(schema["enum"]), name
    assert all(isinstance(d, str) and d for d in descriptions), name


def test_job_failure_codes_are_an_enum_and_the_enum_policy_is_stated():
    assert SCHEMAS["JobFailure"]["properties"]["code"] == {
        "$ref": "#/components/schemas/JobFailureCode"}
    assert SCHEMAS["LastError"]["properties"]["code"] == {
        "$ref": "#/components/schemas/JobFailureCode"}
    text = DOC["info"]["description"]
    assert "## Versioning and enums" in text and "closed within v1" in text
    assert "must ignore response fields they do not know" in text


@pytest.mark.parametrize("op_id", sorted(D2_OPERATIONS))
def test_description_names_the_required_scope(op_id):
    op = OPS[op_id]["operation"]
    assert op["description"].startswith(f"Requires the `{op['x-required-scopes'][0]}` scope.")


def test_servers_info_license_and_contact():
    assert [s["url"] for s in DOC["servers"]] == ["https://api.layers.com",
                                                  "http://127.0.0.1:4010"]
    assert DOC["info"]["license"]["name"] and DOC["info"]["license"]["url"]
    assert DOC["info"]["contact"]["name"] and DOC["info"]["contact"]["url"]


@pytest.mark.parametrize("op_id", sorted(D2_OPERATIONS))
def test_every_operation_has_three_code_samples_in_redocly_format(op_id):
    samples = OPS[op_id]["operation"]["x-codeSamples"]
    assert [(s["lang"], s["label"]) for s in samples] == [
        ("Shell", "curl"), ("TypeScript", "TypeScript (fetch)"), ("Python", "Python (httpx)")]
    for s in samples:
        assert "http://127.0.0.1:4010" in s["source"] and "lp_test_full" in s["source"]


@pytest.mark.parametrize("prefer", ["error=BILLING_EXHAUSTED", "error=MODERATION_BLOCKED",
                                    "error=VALIDATION_FAILED", "error=FORBIDDEN_SCOPE"])
def test_forced_errors_carry_the_details_their_schema_requires(client, prefer):
    """`Prefer: error=...` must not hand a generated client a body its types refuse."""
    from layers_kit.mock.domain.errors import STATUS_BY_CODE

    code = prefer.split("=", 1)[1]
    r = client.post("/v1/content/cnt_00000000-0000-4000-8000-000000000103/regenerate",
                    json={}, headers={"Prefer": prefer})
    assert r.status_code == STATUS_BY_CODE[code]
    validator = OAS30Validator({"$ref": f"#/components/schemas/{error_schemas()[code]}",
                                "components": DOC["components"]})
    assert not [e.message for e in validator.iter_errors(r.json()["error"])]
