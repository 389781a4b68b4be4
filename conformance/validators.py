"""openapi-core's own validators, with what they look up in the spec remembered.

For every response (and proxied request) openapi-core walks the spec again: it re-finds the
operation by trying each path template's regex against the URL, builds a style deserializer
(and a schema caster) for every documented header, and compiles a JSON Schema validator
(copying its format checker) for every header and body schema, all through jsonschema-path's
resolving accessors. Measured on one broken-variant run (about 430 responses), that lookup
work was four fifths of the kit's validation CPU; the schema checks themselves a fifth.

These subclasses keep openapi-core's validation logic as it is (the same steps, in the same
order, raising the same errors with the same messages) and memoise only the pure functions
of the spec it calls on the way: the key of each cache is a location in the spec (a tuple of
keys, never an object's identity), the value what openapi-core built for it. Nothing about
the value being validated is cached, so every header, content type and body is still checked
every time.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Mapping
from typing import Any

from jsonschema_path import SchemaPath
from openapi_core.deserializing.styles.exceptions import EmptyQueryParameterValue
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.validators import V30ResponseValidator

from layers_kit.contract.operations import template_regex

__all__ = ["MemoRequestValidator", "MemoResponseValidator"]

# What a validator remembers of the values and bodies it saw passing, bounded in entries and in
# bytes: a body is remembered by its digest (never its bytes), only when small (the parsed value
# is kept, for the caller), and all of it is forgotten at once when a bound is reached. A proxy
# judging a long session of distinct large bodies grew by their bytes before (81 -> 420 MiB).
_MAX_REMEMBERED = 20_000  # entries, per validator
_MAX_REMEMBERED_BYTES = 8 * 1024 * 1024  # bytes of the values and bodies remembered
_MAX_BODY_REMEMBERED = 64 * 1024  # a larger body is validated every time, never remembered


class _SpecLookups:
    """Memoised spec lookups shared by the request and response validators (a mixin)."""

    def _memo(self) -> dict:
        memo = self.__dict__.get("_spec_memo")
        if memo is None:
            memo = self.__dict__["_spec_memo"] = {}
        return memo

    def _passed(self, key: tuple) -> bool:
        return key in self.__dict__.get("_passed_memo", ())

    def _remember_passed(self, key: tuple, result: Any = True, size: int = 0) -> None:
        """Remember a value seen passing; `size` is its bytes (a body's length)."""
        passed = self.__dict__.setdefault("_passed_memo", {})
        held = self.__dict__.get("_passed_bytes", 0)
        if len(passed) >= _MAX_REMEMBERED or held + size > _MAX_REMEMBERED_BYTES:
            passed.clear()  # a long proxy session: start afresh
            held = 0
        passed[key] = result
        self.__dict__["_passed_bytes"] = held + size

    def _validate_schema(self, schema: SchemaPath, value: Any) -> None:
        """Validate as openapi-core does, remembering which scalar values (header values)
        passed which schema: validation is a pure function of the two, so a value seen
        passing is passing again (a failing one is validated again, for its message)."""
        scalar = type(value) in (str, int, float, bool)
        if scalar and self._passed(("scalar", schema.parts, type(value), value)):
            return
        key = ("validator", schema.parts)
        validator = self._memo().get(key)
        if validator is None:
            validator = self._memo()[key] = self._schema_validator(schema)
        validator.validate(value)
        if scalar and (type(value) is not str or len(value) <= _MAX_BODY_REMEMBERED):
            self._remember_passed(("scalar", schema.parts, type(value), value),
                                  size=len(value) if type(value) is str else 0)

    def _schema_validator(self, schema: SchemaPath):
        """openapi-core's validator for a schema, built with this validator's settings."""
        return self.schema_validators_factory.create(
            self.spec, schema,
            format_validators=self.format_validators,
            extra_format_validators=self.extra_format_validators,
            forbid_unspecified_additional_properties=(
                self.forbid_unspecified_additional_properties),
            enforce_properties_required=self.enforce_properties_required)

    def _get_content_and_schema(self, raw: bytes, content: SchemaPath,
                                mimetype: str | None = None):
        """Deserialise and validate a body as openapi-core does, remembering the bodies that
        passed: a poll often gets the same bytes again (a job between two changes), and the
        verdict is a pure function of the bytes, the media type and the spec's content.
        The key is the body's SHA-256 (and length), not its bytes; a body over
        `_MAX_BODY_REMEMBERED` is not remembered (its parsed value would be kept with it)."""
        key = None
        if isinstance(raw, bytes | bytearray) and len(raw) <= _MAX_BODY_REMEMBERED:
            key = ("body", content.parts, mimetype, len(raw), hashlib.sha256(raw).digest())
        if key is not None and self._passed(key):
            return self.__dict__["_passed_memo"][key]
        result = super()._get_content_and_schema(raw, content, mimetype)
        if key is not None:
            # the parsed value is kept too: count it as a few times the body's bytes
            self._remember_passed(key, result, size=4 * len(raw) + 200)
        return result

    def _deserialise_style(self, param_or_header: SchemaPath, location: Mapping[str, Any],
                           name: str | None = None) -> Any:
        key = ("style", param_or_header.parts, name)
        deserializer = self._memo().get(key)
        if deserializer is None:
            from openapi_core.schema.parameters import get_style_and_explode

            name = name or (param_or_header / "name").read_str()
            style, explode = get_style_and_explode(param_or_header)
            deserializer = self._memo()[key] = self.style_deserializers_factory.create(
                self.spec, param_or_header / "schema", style, explode, name=name)
        return deserializer.deserialize(location)

    def _get_simple_param_or_header(self, param_or_header: SchemaPath,
                                    location: Mapping[str, Any], name: str | None = None):
        """openapi-core's own steps (BaseValidator._get_simple_param_or_header, 0.23), with
        the four facts it reads from the spec each time read once per parameter or header."""
        key = ("simple", param_or_header.parts)
        facts = self._memo().get(key)
        if facts is None:
            schema = param_or_header / "schema"
            facts = self._memo()[key] = (
                (param_or_header / "allowEmptyValue").read_bool(default=None), schema,
                "default" in schema, (param_or_header / "in").read_str("header"))
        allow_empty_values, schema, has_default, location_name = facts
        if allow_empty_values:
            warnings.warn("Use of allowEmptyValue property is deprecated", DeprecationWarning,
                          stacklevel=2)
        try:
            deserialised = self._deserialise_style(param_or_header, location, name=name)
        except KeyError:
            if not has_default:
                raise
            return (schema / "default").read_value(), schema
        if allow_empty_values is not None:
            warnings.warn("Use of allowEmptyValue property is deprecated", DeprecationWarning,
                          stacklevel=2)
        if not allow_empty_values and location_name == "query" and deserialised == "":
            raise EmptyQueryParameterValue((param_or_header / "name").read_str())
        return deserialised, schema

    def _deserialise_media_type(self, media_type: SchemaPath, mimetype: str,
                                parameters: Mapping[str, str], value: bytes) -> Any:
        key = ("media", media_type.parts, mimetype, tuple(sorted(parameters.items())))
        deserializer = self._memo().get(key)
        if deserializer is None:
            schema = media_type.get("schema")
            encoding = media_type.get("encoding") if "encoding" in media_type else None
            schema_validator = None
            if schema is not None:
                schema_validator = self._schema_validator(schema)
            deserializer = self._memo()[key] = self.media_type_deserializers_factory.create(
                self.spec, mimetype, schema=schema, schema_validator=schema_validator,
                parameters=parameters, encoding=encoding,
                extra_media_type_deserializers=self.extra_media_type_deserializers)
        return deserializer.deserialize(value)


class MemoRequestValidator(_SpecLookups, V30RequestValidator):
    """openapi-core's request validator for OpenAPI 3.0, its spec lookups memoised. The path
    is found afresh for every request: the path parameters' values come from it."""


class MemoResponseValidator(_SpecLookups, V30ResponseValidator):
    """openapi-core's response validator for OpenAPI 3.0, its spec lookups memoised, and the
    operation remembered per (method, server, path template): a response's validation reads
    only the operation from the path finder's answer, and which operation a URL reaches
    depends only on its template while parameter values hold no `/` (the same rule as
    openapi-core's own templates, which match `[^/]*` between the slashes). The key keeps
    everything before the template (the server's part), so a URL under another server is
    looked up afresh."""

    templates: tuple[tuple[str, re.Pattern], ...] = ()

    def _find_path(self, request: Any):
        if getattr(request, "path_pattern", None):
            return super()._find_path(request)
        matches = [(t, m) for t, pattern in self.templates
                   if (m := pattern.search(request.path))]
        if len(matches) != 1:
            return super()._find_path(request)
        template, match = matches[0]
        key = ("path", request.method, request.host_url, request.path[:match.start()],
               template)
        found = self._memo().get(key)
        if found is None:
            found = super()._find_path(request)  # raises when openapi-core finds none
            self._memo()[key] = found
        return found


def path_templates(doc: dict) -> tuple[tuple[str, re.Pattern], ...]:
    """Each path template of the spec with a regex matching a URL path that ends in it
    (one or more characters other than `/` per parameter), for MemoResponseValidator."""
    return tuple((template, re.compile(template_regex(template, named=False, anchored=False)))
                 for template in (doc.get("paths") or {}))
