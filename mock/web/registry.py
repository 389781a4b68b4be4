"""The mock's operation registry: one record per operationId, built once at start on the
contract's operation table (`layers_kit.contract.operations`).

The contract's table says what the spec says of an operation (method and path, scopes, rate
class, whether it honours `Idempotency-Key` (D6), its statuses) and finds routes; this module
adds what only the mock needs: the domain function that runs the operation, and its parameters
and body as compiled schema validators. Routing, authentication, dispatch, the `Allow` header
of a 405 and the control API all read it (as stripe-mock builds one route record per operation
from its spec).

The route lookup is the contract's matcher, so no framework detail decides whether a request
has an operation (and so whether it is authenticated), and the kit and the proxy name the same
operation for the same request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from jsonschema import Draft4Validator

from layers_kit.contract import operations, spec
from layers_kit.contract.operations import IDEMPOTENCY_HEADER as _IDEMPOTENCY_HEADER
from layers_kit.mock.domain.service import domain_function
from layers_kit.mock.web.oas_schema import FORMAT_CHECKER, RequestValidator, ResponseValidator

IDEMPOTENCY_HEADER = _IDEMPOTENCY_HEADER.lower()


def snake(name: str) -> str:
    """`containerId` -> `container_id`, `If-None-Match` -> `if_none_match`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()


Check = Callable[[Any], bool]


def fast_check(schema: dict[str, Any]) -> Check | None:
    """A compiled `is_valid` for the schema (jsonschema-rs, ~100x jsonschema's speed).

    Only ever a shortcut for "valid": a value it refuses is checked again by the Python
    validator, which decides and words the issues. So where the two differ (the OpenAPI
    `nullable`, which jsonschema-rs does not know), the Python validator's answer stands.
    """
    try:
        return jsonschema_rs.Draft4Validator(schema).is_valid
    except Exception:  # a schema it cannot compile: the Python validator alone
        return None


@dataclass(frozen=True)
class Param:
    name: str  # as the spec spells it
    location: str  # path | header | query
    required: bool
    validator: Draft4Validator
    kwarg: str  # the domain function's parameter name (snake case of the name)
    fast: Check | None = None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    domain: Callable[..., Any]
    scopes: tuple[str, ...]
    rate_class: str | None
    takes_body: bool
    body_required: bool
    body_default: Any
    body_nullable: bool
    body_validator: Draft4Validator | None
    body_fast: Check | None
    success: frozenset[int]
    idempotent: bool
    params: tuple[Param, ...]
    # status -> validator of the JSON body (built only with --validate-responses)
    responses: dict[int, Draft4Validator] = field(default_factory=dict)

    def domain_kwargs(self) -> tuple[str, ...]:
        """The parameters its domain function takes from the request (besides tx and ctx)."""
        names = [p.kwarg for p in self.params
                 if p.location != "query" and p.name.lower() != IDEMPOTENCY_HEADER]
        return (*names, "body") if self.takes_body else tuple(names)


@dataclass(frozen=True)
class Match:
    """The outcome of a route lookup.

    `allowed` is None when no path template of the spec matches (an unknown route); otherwise
    the methods the path takes. `operation` is None when the method is not one of them, and
    also when the spec routes the request to an operationId the registry does not know (then
    `routed` is True and the request fails closed).
    """

    operation: Operation | None
    params: dict[str, str]
    allowed: tuple[str, ...] | None
    routed: bool = False


def _param(raw: dict[str, Any]) -> Param:
    p = spec.resolve(raw)
    schema = spec.inline(p.get("schema", {}))
    return Param(p["name"], p["in"], bool(p.get("required")),
                 Draft4Validator(schema, format_checker=FORMAT_CHECKER), snake(p["name"]),
                 fast_check(schema))


def _operation(record: operations.Operation, with_responses: bool) -> Operation:
    node = record.node
    body = record.request_body
    body_schema = spec.inline(body["content"]["application/json"].get("schema", {})) \
        if body else None
    responses: dict[int, Draft4Validator] = {}
    if with_responses:
        for status, resp in node["responses"].items():
            media = spec.resolve(resp).get("content", {}).get("application/json")
            if status.isdigit() and media and "schema" in media:
                responses[int(status)] = ResponseValidator(
                    spec.inline(media["schema"]), format_checker=FORMAT_CHECKER)
    return Operation(
        operation_id=record.operation_id, method=record.method, path=record.path,
        domain=domain_function(record.operation_id), scopes=record.scopes,
        rate_class=record.rate_class,
        takes_body=body is not None, body_required=bool(body and body.get("required")),
        body_default=(body_schema or {}).get("default"),
        body_nullable=bool((body_schema or {}).get("nullable")),
        body_validator=RequestValidator(body_schema, format_checker=FORMAT_CHECKER)
        if body_schema is not None else None,
        body_fast=fast_check(body_schema) if body_schema is not None else None,
        success=record.success, idempotent=record.idempotent,
        params=tuple(_param(p) for p in record.parameters),
        responses=responses,
    )


class Registry:
    """Every operation of the spec, found through the contract's route table."""

    def __init__(self, document: dict[str, Any] | None = None, *,
                 validate_responses: bool = False) -> None:
        self.table = operations.table() if document is None else operations.Operations(document)
        self.by_id: dict[str, Operation] = {
            record.operation_id: _operation(record, validate_responses) for record in self.table}

    def __iter__(self):
        return iter(self.by_id.values())

    def match(self, method: str, path: str) -> Match:
        route = self.table.match(method, path)
        if route.operation_id is None:
            return Match(None, {}, route.allowed)
        return Match(self.by_id.get(route.operation_id), route.params, route.allowed,
                     routed=True)

    def operation_ids(self) -> list[str]:
        return list(self.by_id)
