"""Request validation that reports every offending field (D5 VALIDATION_FAILED, details.issues).

Connexion's own validators stop at the first error and embed a schema dump in the message; these
subclasses collect all errors and word each one as a short sentence.
"""

from __future__ import annotations

from typing import Any

import orjson
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from connexion.validators.parameter import draft4_format_checker
from jsonschema import Draft4Validator, ValidationError

from mock.domain.errors import ValidationFailed

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


class BodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream, scope) -> Any:
        """The same parser as the body guard (orjson), so both agree on what is JSON."""
        raw = b"".join([chunk async for chunk in stream])
        return orjson.loads(raw) if raw else None

    def _validate(self, body: Any) -> dict | None:
        if not self._nullable and body is None:
            raise ValidationFailed([{"path": "body", "message": "a JSON body is required"}])
        validator = Draft4RequestValidator(self._schema,
                                           format_checker=Draft4Validator.FORMAT_CHECKER)
        errors = list(validator.iter_errors(body))
        if errors:
            raise ValidationFailed(_issues("body", errors))
        return None


_VALIDATORS: dict[int, Draft4Validator] = {}


def _param_validator(param: dict) -> Draft4Validator:
    """One compiled validator per parameter of the spec (they live as long as the app)."""
    found = _VALIDATORS.get(id(param))
    if found is None:
        found = Draft4Validator(param.get("schema", param), format_checker=draft4_format_checker)
        _VALIDATORS[id(param)] = found
    return found


class ParamsValidator(ParameterValidator):
    def validate_request(self, request) -> None:
        issues: list[dict[str, str]] = []
        if self.strict_validation:
            for name in sorted(self.validate_query_parameter_list(
                    request, security_params=self.security_query_params)):
                issues.append({"path": f"query.{name}", "message": "is not a known parameter"})
        getters = {
            "query": lambda p: request.query_params.get(p["name"]),
            "path": lambda p: request.path_params.get(p["name"].replace("-", "_")),
            "header": lambda p: request.headers.get(p["name"]),
            "cookie": lambda p: request.cookies.get(p["name"]),
        }
        for location, get in getters.items():
            for param in self.parameters.get(location, []):
                value = get(param)
                where = f"{location}.{param['name']}"
                if value is None:
                    if param.get("required"):
                        issues.append({"path": where, "message": "is required"})
                    continue
                errors = list(_param_validator(param).iter_errors(value))
                issues.extend({"path": where, "message": describe(e)} for e in errors)
        if issues:
            raise ValidationFailed(issues[:MAX_ISSUES])
