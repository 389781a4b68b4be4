"""The operation registry: one record per operationId, built once from openapi.yaml at start.

Everything the mock needs to know about an operation is read here from the spec and nowhere
else: its method and path, the domain function that runs it, its scopes and rate class, whether
it takes a body (and whether that is required), its documented success statuses, whether it
honours `Idempotency-Key` (D6), and its parameters and body as compiled schema validators.
Routing, authentication, dispatch, the `Allow` header of a 405 and the control API all read it
(as stripe-mock builds one route record per operation from its spec).

The route lookup is ours too: a request is matched against the spec's path templates, so no
framework detail decides whether a request has an operation (and so whether it is
authenticated).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from jsonschema import Draft4Validator

from layers_kit.contract import spec
from layers_kit.mock.domain.service import domain_function
from layers_kit.mock.web.oas_schema import FORMAT_CHECKER, RequestValidator, ResponseValidator

METHODS = ("get", "put", "post", "patch", "delete")
# D6: the methods on which an Idempotency-Key is honoured.
IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
IDEMPOTENCY_HEADER = "idempotency-key"


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


def _operation(op_id: str, method: str, path: str, node: dict[str, Any],
               with_responses: bool) -> Operation:
    body = spec.resolve(node.get("requestBody")) if "requestBody" in node else None
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
        operation_id=op_id, method=method.upper(), path=path, domain=domain_function(op_id),
        scopes=tuple(node.get("x-required-scopes", [])),
        rate_class=node.get("x-rate-limit-class"),
        takes_body=body is not None, body_required=bool(body and body.get("required")),
        body_default=(body_schema or {}).get("default"),
        body_nullable=bool((body_schema or {}).get("nullable")),
        body_validator=RequestValidator(body_schema, format_checker=FORMAT_CHECKER)
        if body_schema is not None else None,
        body_fast=fast_check(body_schema) if body_schema is not None else None,
        success=frozenset(int(s) for s in node["responses"] if s[0] in "23"),
        idempotent=method.upper() in IDEMPOTENT_METHODS,
        params=tuple(_param(p) for p in node.get("parameters", [])),
        responses=responses,
    )


class Registry:
    """Every operation of the spec, and the route table that finds them."""

    def __init__(self, document: dict[str, Any] | None = None, *,
                 validate_responses: bool = False) -> None:
        document = document or spec.load_spec()
        self.by_id: dict[str, Operation] = {}
        # Per count of "/" in the path (a parameter never holds one): (compiled template,
        # method -> operationId), in the spec's order. A request is tried against its own
        # depth's few templates only.
        self._routes: dict[int, list[tuple[re.Pattern[str], dict[str, str]]]] = {}
        for path, item in document["paths"].items():
            methods: dict[str, str] = {}
            for method, node in item.items():
                if method not in METHODS:
                    continue
                op_id = node["operationId"]
                if op_id in self.by_id:
                    raise ValueError(f"openapi.yaml: operationId {op_id} is used twice")
                self.by_id[op_id] = _operation(op_id, method, path, node, validate_responses)
                methods[method.upper()] = op_id
            regex = "^" + re.sub(r"\\\{([^/}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
            self._routes.setdefault(path.count("/"), []).append((re.compile(regex), methods))

    def __iter__(self):
        return iter(self.by_id.values())

    def match(self, method: str, path: str) -> Match:
        for regex, methods in self._routes.get(path.count("/"), ()):
            found = regex.match(path)
            if found is None:
                continue
            allowed = tuple(methods)
            op_id = methods.get(method)
            if op_id is None:
                return Match(None, {}, allowed)
            return Match(self.by_id.get(op_id), found.groupdict(), allowed, routed=True)
        return Match(None, {}, None)

    def operation_ids(self) -> list[str]:
        return list(self.by_id)
