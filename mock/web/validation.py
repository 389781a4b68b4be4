"""Request validation that reports every offending field (D5 VALIDATION_FAILED, details.issues).

The validators are compiled once per operation from the spec (see registry.py); this module
collects all errors of a request and words each one as a short sentence (Connexion's own stop at
the first error and embed a schema dump in the message).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from jsonschema import ValidationError

from layers_kit.mock.domain.errors import ApiError, ValidationFailed
from layers_kit.mock.web.state import RequestState

log = logging.getLogger("layers.mock")

MAX_ISSUES = 20


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(err: ValidationError) -> str:
    """One short sentence for a schema error: no schema dumps."""
    kw, v = err.validator, err.validator_value
    messages = {
        "type": lambda: f"must be of type {v}",
        "maxLength": lambda: f"must be at most {v} characters long",
        "minLength": lambda: f"must be at least {v} characters long",
        "pattern": lambda: f"must match the pattern {v}",
        "enum": lambda: "must be one of " + ", ".join(map(str, v)),
        "maxItems": lambda: f"must have at most {v} items",
        "minItems": lambda: f"must have at least {v} items",
        "maximum": lambda: f"must be at most {v}",
        "minimum": lambda: f"must be at least {v}",
        "format": lambda: f"must be a valid {v}",
        "oneOf": lambda: "must match exactly one of the allowed shapes",
        "anyOf": lambda: "must match one of the allowed shapes",
        "required": lambda: "is required",
        "additionalProperties": lambda: "is not an allowed field",
    }
    make = messages.get(kw)
    return make() if make else err.message[:200]


def _issues(prefix: str, errors: list[ValidationError]) -> list[dict[str, str]]:
    out = []
    for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])[:MAX_ISSUES]:
        parts = [prefix, *(str(p) for p in e.absolute_path)]
        if e.validator == "required":
            missing = [name for name in e.validator_value if name not in (e.instance or {})]
            parts.append(missing[0] if missing else "?")
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            allowed = set(e.schema.get("properties", {}))
            extra = sorted(k for k in e.instance if k not in allowed)
            for name in extra:
                out.append({"path": ".".join([*parts, name]), "message": "is not an allowed field"})
            continue
        out.append({"path": ".".join(parts), "message": describe(e)})
    return out[:MAX_ISSUES]


def validate(st: RequestState, query_string: bytes) -> dict[str, Any]:
    """Check the routed request against its operation; the domain function's arguments.

    Every problem is reported at once (D5 `details.issues`). The body was parsed by the body
    guard; an absent body takes the schema's default, and is refused when the spec requires it.
    """
    op = st.operation
    assert op is not None
    issues: list[dict[str, str]] = []
    if query_string:
        # strict: the spec declares no query parameter the mock does not know
        known = {p.name for p in op.params if p.location == "query"}
        names = {unquote_plus(pair.partition("=")[0])
                 for pair in query_string.decode("latin-1").split("&") if pair}
        for name in sorted(names - known):
            issues.append({"path": f"query.{name}", "message": "is not a known parameter"})
    kwargs: dict[str, Any] = {}
    for param in op.params:
        if param.location == "path":
            value = st.path_params.get(param.name)
        elif param.location == "header":
            value = st.headers.get(param.name.lower())
        else:
            continue
        where = f"{param.location}.{param.name}"
        if value is None:
            if param.required:
                issues.append({"path": where, "message": "is required"})
        elif param.fast is None or not param.fast(value):
            issues.extend({"path": where, "message": describe(e)}
                          for e in param.validator.iter_errors(value))
        kwargs[param.kwarg] = value
    if op.takes_body:
        # No body at all takes the schema's default (as Connexion does); JSON null is a body.
        body = st.body if st.body_bytes else op.body_default
        if body is None:
            if not op.body_nullable:
                issues.append({"path": "body", "message": "a JSON body is required"})
        elif op.body_validator is not None and (op.body_fast is None or not op.body_fast(body)):
            issues.extend(_issues("body", list(op.body_validator.iter_errors(body))))
        kwargs["body"] = body if body is not None else {}
    if issues:
        raise ValidationFailed(issues[:MAX_ISSUES])
    return kwargs


def check_response(st: RequestState, status: int, body: Any) -> None:
    """--validate-responses: a body that breaks its documented schema is a bug (500)."""
    op = st.operation
    validator = op.responses.get(status) if op else None
    if validator is None or body is None:
        return
    errors = list(validator.iter_errors(body))
    if errors:
        log.error("response of %s (%s) breaks the spec: %s", op.operation_id, status,
                  "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}"[:200]
                            for e in errors[:5]))
        raise ApiError("The mock produced a response that breaks the contract.",
                       code="INTERNAL")
