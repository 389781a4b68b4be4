"""The contract as the kit and the proxy see it: the same openapi.yaml, read through the contract
package (`layers_kit.contract`), validated with openapi-core (D10).

openapi-core ships no httpx adapter and matches `servers` exactly, so the spec's servers are
replaced by the target's base URL and small request/response adapters are defined here. Which
operation a request addresses comes from the contract's operation table, the same matcher the
mock routes with.
"""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.schemas.factories import SchemaValidatorsFactory
from werkzeug.datastructures import Headers, ImmutableMultiDict

from layers_kit.conformance.validators import (
    MemoRequestValidator,
    MemoResponseValidator,
    path_templates,
    speed_up_spec_walks,
)
from layers_kit.contract import operations
from layers_kit.contract.spec import load_spec, spec_path

__all__ = ["Contract", "documented_statuses", "spec_path"]


class _Request:
    def __init__(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "").lower()
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content or None


class Contract:
    def __init__(self, base_url: str) -> None:
        root = urlsplit(base_url)
        doc = copy.deepcopy(load_spec())
        doc["servers"] = [{"url": f"{root.scheme}://{root.netloc}{root.path.rstrip('/')}"}]
        # The bundled spec is the one tests/test_contract.py proves valid OpenAPI 3.0.3, so
        # openapi-core's own re-validation of it (0.4 s of CPU per run) is skipped.
        self.openapi = OpenAPI.from_dict(doc, config=Config(
            spec_validator_cls=None,
            request_validator_cls=MemoRequestValidator,
            response_validator_cls=MemoResponseValidator))
        speed_up_spec_walks()
        self._requests = self.openapi.request_validator
        self._responses = self.openapi.response_validator
        templates = path_templates(doc)
        for validator in (self._requests, self._responses):
            validator.templates = templates
            validator.schema_validators_factory = _one_format_checker(
                validator.schema_validators_factory)
        self.doc = doc
        self.operations = operations.table()
        self._prefix = urlsplit(doc["servers"][0]["url"]).path

    def operation_for(self, method: str, url: str) -> str | None:
        """The operationId a request addresses, from the spec's paths (None: not documented)."""
        path = urlsplit(url).path
        if self._prefix and path.startswith(self._prefix):
            path = path[len(self._prefix):] or "/"
        return self.operations.match(method, path).operation_id

    def response_errors(self, response: httpx.Response) -> list[str]:
        """Why the response breaks the contract (empty when it conforms)."""
        if response.status_code == 304:
            return []  # no body to check; openapi-core would demand one
        try:
            # openapi-core's validator itself: OpenAPI.validate_response would first check
            # that these adapters of ours fit its Protocols, at a measured cost on every call.
            self._responses.validate(_Request(response.request), _Response(response))
        except Exception as exc:  # openapi-core raises a family of errors
            return _causes(exc)
        return []

    def request_errors(self, request: httpx.Request) -> list[str]:
        """Why the request breaks the contract (empty when it conforms): the validating
        proxy's view of a client."""
        try:
            self._requests.validate(_Request(request))
        except Exception as exc:
            return _causes(exc)
        return []


def _one_format_checker(factory: SchemaValidatorsFactory) -> SchemaValidatorsFactory:
    """The factory, handing every schema validator one format checker instead of a fresh deep
    copy each: openapi-core copies it per schema it validates (each response header and body),
    a fifth of the kit's CPU per response. The copy is changed only when extra format
    validators are given, and the kit gives none; a checker is only read, so threads share it.
    """
    shared = copy.copy(factory)
    checker = factory.get_format_checker()

    def get_format_checker(format_validators=None, extra_format_validators=None):
        if format_validators is None and extra_format_validators is None:
            return checker
        return factory.get_format_checker(format_validators, extra_format_validators)

    shared.get_format_checker = get_format_checker  # create() looks it up on the instance
    return shared


def _causes(exc: Exception) -> list[str]:
    """openapi-core's error and the schema errors under it, one readable line each."""
    causes = [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
    inner = getattr(exc, "__cause__", None)
    for detail in getattr(inner, "schema_errors", []) or []:
        path = "/".join(str(p) for p in detail.path)
        causes.append(f"{path or '(body)'}: {detail.message}")
    return [c[:300] for c in causes]


def documented_statuses() -> dict[str, list[str]]:
    """operationId -> the statuses its responses document, in the spec's order."""
    return operations.table().documented_statuses()
