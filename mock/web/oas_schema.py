"""OpenAPI 3.0's dialect of JSON Schema for `jsonschema`: `nullable`, and `writeOnly` in
responses.

The same extension Connexion's `connexion.json_schema` makes; written here because importing
any part of Connexion imports all of it (0.7 s of CPU at every start of the mock, in each
worker and in each test's mock process), and the API's path uses none of the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend

FORMAT_CHECKER = Draft4Validator.FORMAT_CHECKER


def _allow_nullable(check: Callable[..., Iterator[ValidationError]]) -> Callable[..., Any]:
    """The keyword's check, except that null passes where the schema is nullable."""
    def nullable(validator: Any, value: Any, instance: Any, schema: dict) -> Iterator:
        if instance is None and (schema.get("x-nullable") is True or schema.get("nullable")):
            return
        yield from check(validator, value, instance, schema)
    return nullable


def _write_only(validator: Any, value: Any, instance: Any, schema: dict) -> Iterator:
    yield ValidationError("Property is write-only")


_NULLABLE = {"type": _allow_nullable(Draft4Validator.VALIDATORS["type"]),
             "enum": _allow_nullable(Draft4Validator.VALIDATORS["enum"])}

RequestValidator = extend(Draft4Validator, _NULLABLE)
ResponseValidator = extend(Draft4Validator, {**_NULLABLE, "writeOnly": _write_only,
                                             "x-writeOnly": _write_only})
