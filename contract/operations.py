"""The operation table: one record per operationId, read once from the contract, shared by the
mock, the kit and the proxy.

Everything a reader of the contract needs to know about an operation, short of compiling its
schemas, is read here and nowhere else: its method and path template, its scopes, its
rate-limit class, whether it honours an `Idempotency-Key` (D6), its documented statuses, its
parameters and body as the spec writes them; and for the whole contract, the route matcher
(which operation a concrete path and method are), the API's path prefixes, and D5's table of
error code to status. The mock builds its validators and dispatch on these records, the kit
names the operation of each exchange with the same matcher, and the proxy judges with both, so
the three cannot disagree on what the contract says (as Prism's router serves its mocker and
its forwarder alike).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from layers_kit.contract import spec

# Every method OpenAPI 3.0 lets a path item name, lower case as the spec writes them.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# D6: the methods on which an Idempotency-Key is honoured (every POST and PATCH of the API).
IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


def template_regex(template: str, *, named: bool = True, anchored: bool = True) -> str:
    """The regex of a path template: each `{name}` matches one or more characters other than
    `/` (a named group when `named`); `anchored` pins both ends, otherwise only the end (a URL
    path that ends in the template, under any server prefix)."""
    group = r"(?P<\1>[^/]+)" if named else "[^/]+"
    body = re.sub(r"\\\{([^/}]+)\\\}", group, re.escape(template))
    return ("^" if anchored else "") + body + "$"


@dataclass(frozen=True)
class Operation:
    """What the contract says of one operation (its raw node is kept for readers that compile
    schemas from it: the mock's validators, the kit's schema phase)."""

    operation_id: str
    method: str  # upper case
    path: str  # the template, as the spec writes it
    node: dict[str, Any]
    scopes: tuple[str, ...]
    rate_class: str | None
    idempotent: bool
    statuses: tuple[str, ...]  # documented response statuses, in the spec's order
    parameters: tuple[dict[str, Any], ...]  # `$ref`s resolved
    request_body: dict[str, Any] | None  # `$ref` resolved

    @property
    def success(self) -> frozenset[int]:
        return frozenset(int(s) for s in self.statuses if s[0] in "23")


@dataclass(frozen=True)
class Route:
    """The outcome of a lookup. `allowed` is None when no path template matches (an unknown
    route), else the methods the path takes; `operation_id` is None when the method is not one
    of them."""

    operation_id: str | None
    params: dict[str, str]
    allowed: tuple[str, ...] | None

    @property
    def known_path(self) -> bool:
        return self.allowed is not None


_NO_ROUTE = Route(None, {}, None)


class Operations:
    """Every operation of a contract document, and the route table that finds them."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.by_id: dict[str, Operation] = {}
        # Per count of "/" in the path (a parameter never holds one): (compiled template,
        # method -> operationId), in the spec's order. A request is tried against its own
        # depth's few templates only: this lookup runs on every request the mock serves.
        self._routes: dict[int, list[tuple[re.Pattern[str], dict[str, str]]]] = {}
        prefixes = set()
        for path, item in (document.get("paths") or {}).items():
            methods: dict[str, str] = {}
            for method, node in item.items():
                if method not in METHODS or not isinstance(node, dict):
                    continue
                op = _operation(document, method, path, node)
                if op.operation_id in self.by_id:
                    raise ValueError(f"openapi.yaml: operationId {op.operation_id} is used twice")
                self.by_id[op.operation_id] = op
                methods[op.method] = op.operation_id
            self._routes.setdefault(path.count("/"), []).append(
                (re.compile(template_regex(path)), methods))
            prefixes.add("/" + path.strip("/").split("/")[0] + "/")
        self.prefixes = tuple(sorted(prefixes))
        self.status_of_code = _status_of_code(document)

    def __iter__(self):
        return iter(self.by_id.values())

    def __getitem__(self, operation_id: str) -> Operation:
        return self.by_id[operation_id]

    def match(self, method: str, path: str) -> Route:
        """The operation a method and a concrete path (no query, no server prefix) address."""
        for regex, methods in self._routes.get(path.count("/"), ()):
            found = regex.match(path)
            if found is not None:
                return Route(methods.get(method.upper()), found.groupdict(), tuple(methods))
        return _NO_ROUTE

    def in_contract(self, path: str) -> bool:
        """True for paths under the API's prefixes (`/v1/`), known routes or not: a server's
        docs, health or admin URLs lie outside."""
        return path.startswith(self.prefixes)

    def documented_statuses(self) -> dict[str, list[str]]:
        """operationId -> the statuses its responses document, in the spec's order."""
        return {op.operation_id: list(op.statuses) for op in self}


def _operation(document: dict[str, Any], method: str, path: str,
               node: dict[str, Any]) -> Operation:
    body = node.get("requestBody")
    return Operation(
        operation_id=node["operationId"], method=method.upper(), path=path, node=node,
        scopes=tuple(node.get("x-required-scopes", [])),
        rate_class=node.get("x-rate-limit-class"),
        idempotent=method.upper() in IDEMPOTENT_METHODS,
        statuses=tuple(str(s) for s in node.get("responses") or {}),
        parameters=tuple(spec.resolve(p, document) for p in node.get("parameters", [])),
        request_body=spec.resolve(body, document) if body is not None else None,
    )


def _status_of_code(document: dict[str, Any]) -> dict[str, frozenset[int]]:
    """D5's error code -> status table, as the contract's documented error examples show it."""
    out: dict[str, set[int]] = {}
    for item in (document.get("paths") or {}).values():
        for method, op in item.items():
            if method not in METHODS or not isinstance(op, dict):
                continue
            for status, response in (op.get("responses") or {}).items():
                if not str(status).isdigit() or int(status) < 400:
                    continue
                for media in (spec.resolve(response, document).get("content") or {}).values():
                    examples = [media.get("example")] + [
                        spec.resolve(e, document).get("value")
                        for e in (media.get("examples") or {}).values()]
                    for ex in examples:
                        if isinstance(ex, dict) and isinstance(ex.get("error"), dict):
                            out.setdefault(ex["error"].get("code"), set()).add(int(status))
    return {code: frozenset(statuses) for code, statuses in out.items()}


@functools.cache
def table() -> Operations:
    """The operation table of the packaged contract (built once per process)."""
    return Operations(spec.load_spec())
