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

import functools
import hashlib
import importlib.metadata
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

import pathable.accessors
from jsonschema_path import SchemaPath
from openapi_core.datatypes import Parameters, RequestParameters
from openapi_core.deserializing.styles.exceptions import EmptyQueryParameterValue
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.templating.datatypes import TemplateResult
from openapi_core.templating.paths.datatypes import PathOperationServer
from openapi_core.templating.paths.parsers import PathParser
from openapi_core.templating.responses.finders import ResponseFinder
from openapi_core.templating.security.exceptions import SecurityNotFound
from openapi_core.util import chainiters
from openapi_core.validation.decorators import ValidationErrorWrapper
from openapi_core.validation.exceptions import ValidationError
from openapi_core.validation.request.exceptions import (
    InvalidParameter,
    InvalidRequestBody,
    InvalidSecurity,
    MissingParameter,
    MissingRequestBody,
    MissingRequiredParameter,
    MissingRequiredRequestBody,
    ParametersError,
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.exceptions import (
    HeadersError,
    HeaderValidationError,
    InvalidHeader,
    MissingHeader,
    MissingRequiredHeader,
)
from openapi_core.validation.response.validators import V30ResponseValidator
from pathable.protocols import Subscriptable

from layers_kit.contract.operations import template_regex

__all__ = ["MemoRequestValidator", "MemoResponseValidator", "speed_up_spec_walks"]

# What a validator remembers of the values and bodies it saw passing, bounded in entries and in
# bytes: a body is remembered by its digest (never its bytes), only when small (the parsed value
# is kept, for the caller), and all of it is forgotten at once when a bound is reached. A proxy
# judging a long session of distinct large bodies grew by their bytes before (81 -> 420 MiB).
_MAX_REMEMBERED = 20_000  # entries, per validator
_MAX_REMEMBERED_BYTES = 8 * 1024 * 1024  # bytes of the values and bodies remembered
_MAX_BODY_REMEMBERED = 64 * 1024  # a larger body is validated every time, never remembered
# Scalar values (headers, parameters) are remembered per schema, at most this many each: an
# API key or an enum's value comes back, a request id or an Idempotency-Key never does, and
# those filled one shared table of 20,000 entries, whose refills kept a proxy's judge growing
# for about 100 s of a soak before its memory levelled (bench/README.md, the proxy's soak).
_MAX_SCALARS_PER_SCHEMA = 64
_MAX_SCALAR_REMEMBERED = 256  # characters: a longer string value is validated every time


class _SpecLookups:
    """Memoised spec lookups shared by the request and response validators (a mixin)."""

    templates: tuple[tuple[str, re.Pattern], ...] = ()  # path_templates(doc), set by the owner

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
        if scalar:
            seen = self._facts(("passed", schema.parts), set)
            if (type(value), value) in seen:
                return
        self._facts(("validator", schema.parts), lambda: self._schema_validator(schema)) \
            .validate(value)
        if scalar and (type(value) is not str or len(value) <= _MAX_SCALAR_REMEMBERED):
            if len(seen) >= _MAX_SCALARS_PER_SCHEMA:
                seen.clear()
            seen.add((type(value), value))

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
        def build():
            from openapi_core.schema.parameters import get_style_and_explode

            style, explode = get_style_and_explode(param_or_header)
            return self.style_deserializers_factory.create(
                self.spec, param_or_header / "schema", style, explode,
                name=name or (param_or_header / "name").read_str())
        return self._facts(("style", param_or_header.parts, name), build).deserialize(location)

    def _get_simple_param_or_header(self, param_or_header: SchemaPath,
                                    location: Mapping[str, Any], name: str | None = None):
        """openapi-core's own steps (BaseValidator._get_simple_param_or_header, 0.23), with
        the four facts it reads from the spec each time read once per parameter or header."""
        allow_empty_values, schema, has_default, location_name = self._facts(
            ("simple", param_or_header.parts), lambda: _simple_facts(param_or_header))
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
        def build():
            schema = media_type.get("schema")
            return self.media_type_deserializers_factory.create(
                self.spec, mimetype, schema=schema,
                schema_validator=None if schema is None else self._schema_validator(schema),
                parameters=parameters,
                encoding=media_type.get("encoding") if "encoding" in media_type else None,
                extra_media_type_deserializers=self.extra_media_type_deserializers)
        key = ("media", media_type.parts, mimetype, tuple(sorted(parameters.items())))
        return self._facts(key, build).deserialize(value)

    # ---- the walks openapi-core repeats for every exchange, read once per spec location ----
    # Measured on the soak's load (bench/judge_cost.py), these walks were most of the judge's
    # CPU: each `/`, `in` and read of a SchemaPath resolves its location again.

    def _facts(self, key: tuple, read: Callable[[], Any]) -> Any:
        """`read()` (a pure function of the spec) once per key."""
        memo = self._memo()
        if key not in memo:
            memo[key] = read()
        return memo[key]

    def _find_template(self, request: Any) -> tuple[str, tuple] | None:
        """The one path template the request's URL ends in and the memo key of what
        openapi-core finds for it (None when not exactly one template matches, or the
        request names its own pattern)."""
        if getattr(request, "path_pattern", None):
            return None
        matches = [(t, m) for t, pattern in self.templates
                   if (m := pattern.search(request.path))]
        if len(matches) != 1:
            return None
        template, match = matches[0]
        return template, ("path", request.method, request.host_url,
                          request.path[:match.start()], template)

    def _get_param_or_header_and_schema(self, param_or_header: SchemaPath,
                                        location: Mapping[str, Any], name: str | None = None):
        """openapi-core's own steps (BaseValidator, 0.23), whether the parameter or header
        is described by `content` read once."""
        simple = self._facts(("simple?", param_or_header.parts),
                             lambda: "content" not in param_or_header)
        if simple:
            casted, schema = self._get_simple_param_or_header(param_or_header, location,
                                                              name=name)
        else:
            casted, schema = self._get_complex_param_or_header(param_or_header, location,
                                                               name=name)
        if schema is None:
            return casted, None
        self._validate_schema(schema, casted)
        return casted, schema


class MemoRequestValidator(_SpecLookups, V30RequestValidator):
    """openapi-core's request validator for OpenAPI 3.0, its spec lookups memoised. What the
    path finder finds is remembered per template as for responses (MemoResponseValidator),
    and the path parameters' values are read from each URL with openapi-core's own parser of
    that template."""

    def _find_path(self, request: Any) -> PathOperationServer:
        found = self._find_template(request)
        url = urljoin(request.host_url, request.path)
        if found is None or url.endswith(found[0]):  # openapi-core's literal-match case
            return super()._find_path(request)
        template, key = found
        known = self._memo().get(key)
        if known is None:
            known = super()._find_path(request)  # raises when openapi-core finds none
            if known.path_result.pattern != template:
                return known
            self._memo()[key] = known
        parser = self._facts(("parser", template),
                             lambda: PathParser(template, post_expression="$"))
        result = parser.search(url)
        if result is None:
            return super()._find_path(request)
        return known._replace(path_result=TemplateResult(template, result.named))

    def _get_parameters(self, parameters: RequestParameters, operation: SchemaPath,
                        path: SchemaPath) -> Parameters:
        """openapi-core's steps (BaseRequestValidator._get_parameters, 0.23), with the
        operation's and the path's parameters listed once (the first of each name and
        location, as openapi-core skips the ones seen)."""
        errors = []
        validated = Parameters()
        for param, name, where in self._facts(("parameters", operation.parts, path.parts),
                                              lambda: _parameters(operation, path)):
            try:
                value = self._get_parameter(parameters, param)
            except MissingParameter:
                continue
            except ParameterValidationError as exc:
                errors.append(exc)
                continue
            getattr(validated, where)[name] = value
        if errors:
            raise ParametersError(errors=errors, parameters=validated)
        return validated

    @ValidationErrorWrapper(ParameterValidationError, InvalidParameter, "from_spec",
                            spec="param")
    def _get_parameter(self, parameters: RequestParameters, param: SchemaPath) -> Any:
        name, where, deprecated, required = self._facts(("parameter", param.parts), lambda: (
            (param / "name").read_str(), (param / "in").read_str(),
            (param / "deprecated").read_bool(default=False),
            (param / "required").read_bool(default=False)))
        location = parameters[where]
        if deprecated and name in location:
            warnings.warn(f"{name} parameter is deprecated", DeprecationWarning, stacklevel=2)
        try:
            value, _ = self._get_param_or_header_and_schema(param, location)
        except KeyError:
            if required:
                raise MissingRequiredParameter(name, where) from None
            raise MissingParameter(name, where) from None
        return value

    @ValidationErrorWrapper(SecurityValidationError, InvalidSecurity)
    def _get_security(self, parameters: RequestParameters,
                      operation: SchemaPath) -> dict[str, str] | None:
        """openapi-core's steps (BaseRequestValidator._get_security, 0.23), with the
        requirements and each scheme's provider read once per operation."""
        requirements = self._facts(("security", operation.parts),
                                   lambda: self._requirements(operation))
        if requirements is None:
            return {}
        schemes = []
        for names, providers in requirements:
            try:
                schemes.append(list(names))
                return {name: provider(parameters) if provider else None
                        for name, provider in zip(names, providers, strict=True)}
            except SecurityProviderError:
                continue
        raise SecurityNotFound(schemes)

    def _requirements(self, operation: SchemaPath):
        security = None
        if "security" in self.spec:
            security = self.spec / "security"
        if "security" in operation:
            security = operation / "security"
        if not security:
            return None
        schemes = self.spec / "components#securitySchemes"
        return tuple(
            (names, tuple(self.security_provider_factory.create(schemes[name])
                          if name in schemes else None for name in names))
            for names in (tuple(requirement.str_keys()) for requirement in security))

    @ValidationErrorWrapper(RequestBodyValidationError, InvalidRequestBody)
    def _get_body(self, body: bytes | None, mimetype: str, operation: SchemaPath) -> Any:
        """openapi-core's steps (BaseRequestValidator._get_body, 0.23), the operation's
        request body read once."""
        facts = self._facts(("body", operation.parts), lambda: None
                            if "requestBody" not in operation else (
                                operation / "requestBody" / "content",
                                (operation / "requestBody" / "required").read_bool(
                                    default=False)))
        if facts is None:
            return None
        content, required = facts
        if not body:
            if required:
                raise MissingRequiredRequestBody
            raise MissingRequestBody
        value, _ = self._get_content_and_schema(body, content, mimetype)
        return value


class MemoResponseValidator(_SpecLookups, V30ResponseValidator):
    """openapi-core's response validator for OpenAPI 3.0, its spec lookups memoised, and the
    operation remembered per (method, server, path template): a response's validation reads
    only the operation from the path finder's answer, and which operation a URL reaches
    depends only on its template while parameter values hold no `/` (the same rule as
    openapi-core's own templates, which match `[^/]*` between the slashes). The key keeps
    everything before the template (the server's part), so a URL under another server is
    looked up afresh."""

    def _find_path(self, request: Any):
        found = self._find_template(request)
        if found is None:
            return super()._find_path(request)
        # openapi-core's own answer the first time (it raises when it finds none)
        return self._facts(found[1], lambda: super(MemoResponseValidator, self)._find_path(
            request))

    def _find_operation_response(self, status_code: int, operation: SchemaPath) -> SchemaPath:
        # ResponseNotFound is raised afresh each time: _facts keeps only what was found
        return self._facts(("response", operation.parts, status_code), lambda: ResponseFinder(
            operation / "responses").find(str(status_code)))

    def _get_headers(self, headers: Any, operation_response: SchemaPath) -> dict[str, Any]:
        """openapi-core's steps (BaseResponseValidator._get_headers, 0.23), the response's
        documented headers listed once."""
        documented = self._facts(("headers", operation_response.parts), lambda: None
                                 if "headers" not in operation_response else tuple(
                                     (name, header) for name, header in
                                     (operation_response / "headers").str_items()
                                     if name.lower() != "content-type"))
        if documented is None:
            return {}
        errors: list[Exception] = []
        validated: dict[str, Any] = {}
        for name, header in documented:
            try:
                value = self._get_header(headers, name, header)
            except MissingHeader:
                continue
            except ValidationError as exc:
                errors.append(exc)
                continue
            validated[name] = value
        if errors:
            raise HeadersError(context=iter(errors), headers=validated)
        return validated

    @ValidationErrorWrapper(HeaderValidationError, InvalidHeader, name="name")
    def _get_header(self, headers: Mapping[str, Any], name: str, header: SchemaPath) -> Any:
        deprecated, required = self._facts(("header", header.parts), lambda: (
            (header / "deprecated").read_bool(default=False),
            (header / "required").read_bool(default=False)))
        if deprecated and name in headers:
            warnings.warn(f"{name} header is deprecated", DeprecationWarning, stacklevel=2)
        try:
            value, _ = self._get_param_or_header_and_schema(header, headers, name=name)
        except KeyError:
            if required:
                raise MissingRequiredHeader(name) from None
            raise MissingHeader(name) from None
        return value


def _simple_facts(param_or_header: SchemaPath) -> tuple:
    """What openapi-core reads of a parameter or header described by a schema: allowEmptyValue,
    the schema, whether it has a default, and where it is."""
    schema = param_or_header / "schema"
    return ((param_or_header / "allowEmptyValue").read_bool(default=None), schema,
            "default" in schema, (param_or_header / "in").read_str("header"))


def _parameters(operation: SchemaPath, path: SchemaPath) -> tuple:
    """The parameters openapi-core validates for an operation, as (parameter, name, in): the
    operation's, then the path item's, the first of each name and location."""
    out, seen = [], set()
    for param in chainiters(operation.get("parameters", SchemaPath.from_dict({})),
                            path.get("parameters", SchemaPath.from_dict({}))):
        name, where = (param / "name").read_str(), (param / "in").read_str()
        if (name, where) not in seen:
            seen.add((name, where))
            out.append((param, name, where))
    return tuple(out)


_BUILTIN_NODES = (dict, list, str, int, float, bool, type(None))
_SUBSCRIPTABLE = {t: issubclass(t, Subscriptable) for t in _BUILTIN_NODES}


@functools.cache  # once per process
def speed_up_spec_walks() -> None:
    """Make pathable's `isinstance(node, Subscriptable)` (a runtime Protocol check, run on
    every step of every spec walk) a table lookup for the built-in types a spec is made of.

    On Python 3.11 each such check lists the Protocol's members anew; measured on the soak's
    load, that was a fifth of the proxy judge's CPU (bench/judge_cost.py). For a built-in type
    the answer depends only on the type, so it is read once per type with the same check and
    looked up after; any other node gets pathable's own step, unchanged. Only pathable 0.5
    (whose step this repeats) is changed; another version keeps its own. Idempotent.
    """
    if not importlib.metadata.version("pathable").startswith("0.5."):
        return

    def _get_subnode(cls, node, part):
        known = _SUBSCRIPTABLE.get(type(node))
        if known is None:
            known = isinstance(node, Subscriptable)
        if not known:
            raise KeyError(part)
        try:
            return node[part]
        except (KeyError, IndexError, TypeError) as exc:
            raise KeyError(part) from exc

    pathable.accessors.SubscriptableAccessor._get_subnode = classmethod(_get_subnode)


def path_templates(doc: dict) -> tuple[tuple[str, re.Pattern], ...]:
    """Each path template of the spec with a regex matching a URL path that ends in it
    (one or more characters other than `/` per parameter), for MemoResponseValidator."""
    return tuple((template, re.compile(template_regex(template, named=False, anchored=False)))
                 for template in (doc.get("paths") or {}))
