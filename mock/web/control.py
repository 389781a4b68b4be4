"""The control API under /__mock/ (D9), outside the contract, plus the spec as YAML and the
reference page at /reference (D12).

The control API is described by its own OpenAPI document, `mock/control.yaml`, served at
`/__mock/openapi.json`; its routes, query parameters and request bodies are read from that
document and every request is validated against it (422 VALIDATION_FAILED in the D5 envelope),
so a malformed fault or clock move never reaches the store.

Kept safe from a browser (a page on any origin can reach 127.0.0.1):
- every POST needs `Content-Type: application/json` (415 otherwise): a browser cannot send
  that cross-origin without a CORS preflight, and the control API answers no preflight;
- the control API stays out of CORS: the CORS layer (D13, `--cors-origin`) must not
  cover `/__mock/` — no Access-Control-* header is ever sent from here;
- without `--admin-token`, the `Host` header must name the bound address or a loopback name
  (`localhost`, 127.0.0.0/8, ::1), so a DNS-rebinding page (Host: evil.example) gets 404.
Closed (404) when the mock listens on a non-loopback address without --admin-token; with a
token, every call must carry it in `X-Admin-Token`, and the token alone guards it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft4Validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from layers_kit.contract import spec
from layers_kit.mock.config import admin_mac
from layers_kit.mock.domain.clock import iso
from layers_kit.mock.domain.errors import (
    ApiError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from layers_kit.mock.domain.service import MockService
from layers_kit.mock.web import client_report, faults
from layers_kit.mock.web.chaos import Chaos, ChaosState
from layers_kit.mock.web.chaos import from_config as chaos_from_config
from layers_kit.mock.web.chaos import parse as chaos_parse
from layers_kit.mock.web.reference import ReferencePage
from layers_kit.mock.web.registry import Registry
from layers_kit.mock.web.responses import dumps, error
from layers_kit.mock.web.validation import describe

CONTROL_SPEC = Path(__file__).resolve().parent.parent / "control.yaml"
PREFIX = "/__mock/"
MAX_CONTROL_BODY = 64 * 1024
LAST_INSTANT = 253402300799.0  # 9999-12-31T23:59:59Z: the clock never moves past it
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: "²" is a digit to str.isdigit, not to int()


@functools.cache
def control_spec() -> dict[str, Any]:
    """The control API's OpenAPI document (package data beside openapi.yaml)."""
    return yaml.safe_load(CONTROL_SPEC.read_text(encoding="utf-8"))


class _Route:
    """One control operation as the document declares it."""

    def __init__(self, method: str, path: str, op: dict[str, Any], root: dict[str, Any]) -> None:
        self.method, self.path = method, path
        self.operation_id = op["operationId"]
        body = (op.get("requestBody") or {})
        media = body.get("content", {}).get("application/json")
        self.body_required = bool(body.get("required"))
        self.body = Draft4Validator(spec.inline(media["schema"], root)) if media else None
        self.params = {p["name"]: spec.inline(p["schema"], root) for p in op.get("parameters", [])}
        self.param_validators = {name: Draft4Validator(s) for name, s in self.params.items()}


@functools.cache
def _routes() -> dict[tuple[str, str], _Route]:
    root = control_spec()
    return {(method.upper(), path): _Route(method.upper(), path, op, root)
            for path, item in root["paths"].items() for method, op in item.items()}


def _issues(prefix: str, validator: Draft4Validator, value: Any) -> list[dict[str, str]]:
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.path])
    out = []
    for e in errors[:20]:
        parts = [prefix, *(str(p) for p in e.absolute_path)]
        # A schema may word its own error (x-error), where "one of the allowed shapes" says
        # too little.
        message = e.schema.get("x-error") or describe(e)
        out.append({"path": ".".join(parts), "message": message})
    return out


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def host_is_local(host_header: str | None, bound: str | None) -> bool:
    """DNS-rebinding guard: the Host names the bound address or a loopback name."""
    if host_header is None:
        return True  # HTTP/1.0 without Host: no browser sends that
    name = _host_name(host_header.strip()).lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or (bound and name == bound.lower()):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/")
                                          and mime.endswith("+json"))


class ControlMiddleware:
    def __init__(self, app: ASGIApp, service: MockService, *, enabled: bool,
                 admin_digest: str | None, registry: Registry | None = None,
                 admin_key: str | None = None, chaos: ChaosState | None = None) -> None:
        self.app = app
        self.service = service
        self.registry = registry or Registry()  # the operations a fault may name
        self.enabled = enabled
        # The token's HMAC-SHA256 under the run's random key (Config.admin_token_key): workers
        # never hold the token itself (Config.to_json). MACs compare in constant time; a
        # non-ASCII or short token is refused at start (config). Without a key: SHA-256.
        self.admin_digest = admin_digest
        self.admin_key = admin_key
        self.chaos = chaos or ChaosState()  # the chaos in force (chaos.py), per process
        self.reference = ReferencePage()  # /reference: one build at a time (reference.py)
        self._spec_yaml: bytes | None = None  # /openapi.yaml, read once
        self.handlers = {
            "controlSpec": self.control_spec, "reset": self.reset, "getClock": self.clock,
            "advanceClock": self.advance, "listRequests": self.requests,
            "listFaults": self.list_faults, "addFault": self.add_fault,
            "clearFaults": self.clear_faults, "getChaos": self.get_chaos,
            "setChaos": self.set_chaos, "clearChaos": self.clear_chaos,
            "clientReport": self.client_report,
        }
        missing = {r.operation_id for r in _routes().values()} - set(self.handlers)
        if missing:  # load once, fail fast: the document and the code must agree
            raise RuntimeError(f"control.yaml operations without a handler: {sorted(missing)}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/openapi.yaml":
            if self._spec_yaml is None:
                self._spec_yaml = spec.spec_path().read_bytes()
            body = self._spec_yaml
            await Response(body, media_type="application/yaml")(scope, receive, send)
            return
        if scope["type"] == "http" and path == "/reference":
            await (await self.reference.response())(scope, receive, send)
            return
        if scope["type"] != "http" or not (path.startswith(PREFIX) or path == PREFIX[:-1]):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.dispatch(request)
        except ApiError as err:
            response = error(err)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        if not self.enabled:
            raise NotFound("The control API is off: the mock listens beyond loopback without "
                           "--admin-token.")
        if self.admin_digest is not None:
            given = request.headers.get("x-admin-token", "")
            if self.admin_key is not None:
                digest = admin_mac(self.admin_key, given)
            else:
                digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).hexdigest()
            if not hmac.compare_digest(digest, self.admin_digest):
                raise Unauthenticated("The control API needs the X-Admin-Token header.")
        else:
            server = request.scope.get("server")
            if not host_is_local(request.headers.get("host"), server[0] if server else None):
                raise NotFound("The control API answers only a Host naming a loopback address "
                               "(127.0.0.1, localhost, [::1]); start with --admin-token to "
                               "reach it by another name.")
        path = request.url.path
        route = _routes().get((request.method, path))
        if route is None:
            allowed = [m for (m, p) in _routes() if p == path]
            if allowed:
                raise ApiError(code="METHOD_NOT_ALLOWED", headers={"Allow": ", ".join(allowed)})
            raise NotFound("No such control endpoint; see /__mock/openapi.json.")
        params = self._params(route, request)
        body = await self._body(route, request)
        return await self.handlers[route.operation_id](request, body=body, **params)

    def _params(self, route: _Route, request: Request) -> dict[str, Any]:
        issues: list[dict[str, str]] = []
        values: dict[str, Any] = {}
        for name in request.query_params:
            if name not in route.params:
                issues.append({"path": f"query.{name}", "message": "is not a known parameter"})
        for name, schema in route.params.items():
            raw = request.query_params.get(name)
            if raw is None:
                values[name] = schema.get("default")
                continue
            value: Any = raw
            if schema.get("type") == "integer":
                if not _DIGITS.fullmatch(raw):
                    issues.append({"path": f"query.{name}", "message": "must be a whole number "
                                   f"from {schema.get('minimum')} to {schema.get('maximum')}"})
                    continue
                value = int(raw)
            found = _issues(f"query.{name}", route.param_validators[name], value)
            issues.extend({"path": f"query.{name}", "message": i["message"]} for i in found)
            values[name] = value
        if issues:
            raise ValidationFailed(issues)
        return {"query": values}

    async def _body(self, route: _Route, request: Request) -> Any:
        if request.method != "POST":
            return None
        # A JSON content type on every POST, even an empty one: a browser cannot send it
        # cross-origin without a preflight, which the control API never grants.
        if not _is_json(request.headers.get("content-type")):
            raise UnsupportedMediaType("Control calls take Content-Type: application/json "
                                       "(even with an empty body).")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_CONTROL_BODY:
                raise PayloadTooLarge(f"A control request body is at most {MAX_CONTROL_BODY} "
                                      "bytes.")
        if not raw.strip():
            if route.body_required:
                raise ValidationFailed([{"path": "body", "message": "a JSON body is required"}])
            return {}
        try:
            data = orjson.loads(raw)  # refuses nesting deeper than 1024, NaN, lone surrogates
        except orjson.JSONDecodeError:
            raise ValidationFailed([{"path": "body", "message": "is not valid JSON"}]) from None
        if route.body is not None:
            issues = _issues("body", route.body, data)
            if issues:
                raise ValidationFailed(issues)
        return data

    # ---- handlers, one per operationId of control.yaml ----------------------------------

    async def control_spec(self, request: Request, **_: Any) -> Response:
        return _json(control_spec())

    # Every store call of a handler runs off the event loop, bounded by the store timeout
    # (Store.call, Store.transact): a paused Redis froze every connection 2 s per control
    # call, and a SQLite lock held by another process froze `reset` for 5 s.

    async def reset(self, request: Request, **_: Any) -> Response:
        await self.service.store.call(self.service.reset)
        self.chaos.arm(chaos_from_config(self.service.config))  # the chaos the mock began with
        return _json({"reset": True, "clock": await self._clock()})

    async def _clock(self) -> dict[str, Any]:
        now = await self.service.store.call(self.service.clock.now)
        return {"kind": self.service.clock.kind, "now": iso(now)}

    async def clock(self, request: Request, **_: Any) -> Response:
        return _json(await self._clock())

    async def advance(self, request: Request, body: dict[str, Any], **_: Any) -> Response:
        seconds = float(body["seconds"])
        clock = self.service.clock
        if clock.kind == "manual":
            now = await self.service.store.call(clock.now)
            if now + seconds > LAST_INSTANT:  # a date-time has 4 digits of year (RFC 3339)
                raise ValidationFailed([{"path": "body.seconds", "message": (
                    f"would move the clock past 9999-12-31T23:59:59Z (it reads {iso(now)}); "
                    "POST /__mock/reset starts it again from now")}])
        try:
            await self.service.store.call(lambda: clock.advance(seconds))
        except ValueError as exc:
            raise Conflict(str(exc).capitalize() + ".") from None
        return _json(await self._clock())

    async def requests(self, request: Request, query: dict[str, Any], **_: Any) -> Response:
        limit = query["limit"]
        entries = await self.service.store.call(lambda: self.service.store.journal(limit))
        op = query.get("operationId")
        if op:
            entries = [e for e in entries if e.get("operationId") == op]
        return _json({"requests": entries})

    async def get_chaos(self, request: Request, **_: Any) -> Response:
        return _json(self.chaos.chaos.as_dict())

    async def set_chaos(self, request: Request, body: dict[str, Any], **_: Any) -> Response:
        try:
            armed = chaos_parse(body)
        except ValueError as exc:
            raise ValidationFailed([{"path": "body", "message": str(exc)}]) from None
        unknown = [o for o in armed.operations if o not in self.registry.by_id]
        if unknown:
            raise ValidationFailed([{"path": "body.operations",
                                     "message": f"no operation {', '.join(unknown)} in "
                                                "openapi.yaml"}])
        self.chaos.arm(armed)
        return _json(armed.as_dict())

    async def clear_chaos(self, request: Request, **_: Any) -> Response:
        self.chaos.arm(Chaos())
        return _json(Chaos().as_dict())

    async def client_report(self, request: Request, query: dict[str, Any],
                            **_: Any) -> Response:
        """How each client behaved (client_report.py), from the journal: JSON or JUnit."""
        entries = await self.service.store.call(
            lambda: self.service.store.journal(self.service.config.journal_size))
        data = client_report.report(reversed(entries), query.get("client"))
        if query.get("format") == "junit":
            return Response(client_report.junit(data), media_type="application/xml")
        return _json(data)

    async def list_faults(self, request: Request, **_: Any) -> Response:
        return _json({"faults": await faults.listing(self.service.store)})

    async def add_fault(self, request: Request, body: dict[str, Any], **_: Any) -> Response:
        try:
            fault = faults.normalize(body)
        except ValueError as exc:
            raise ValidationFailed([{"path": "body", "message": str(exc)}]) from None
        op_id = fault["match"].get("operationId")
        if op_id and op_id not in self.registry.by_id:  # it would never fire
            raise ValidationFailed([{"path": "body.match.operationId",
                                     "message": "is not an operationId of the contract"}])
        try:
            faults.check_contract(fault)
        except ValueError as exc:
            raise ValidationFailed([{"path": "body.status", "message": str(exc)}]) from None
        await faults.add(self.service.store, fault)
        return _json(fault, 201)

    async def clear_faults(self, request: Request, **_: Any) -> Response:
        await faults.clear(self.service.store)
        return _json({"faults": []})
