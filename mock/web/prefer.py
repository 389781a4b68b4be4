"""Per-request control with the `Prefer` header (D9), as Prism users know it.

    Prefer: code=409            the operation's documented 409, as in the spec's example
    Prefer: error=BILLING_EXHAUSTED   that D5 error, with its status
    Prefer: job=fail            the started job fails (at generating_visuals)
    Prefer: latency=1500        answer after 1.5 s (the request holds its Idempotency-Key)

Preferences apply after authentication and validation, and are never stored for idempotency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from layers_kit.contract import operations, spec
from layers_kit.mock.domain.errors import STATUS_BY_CODE, ApiError, ValidationFailed
from layers_kit.mock.domain.idempotency import Stored

MAX_LATENCY_MS = 30000
# ASCII digits only: "²" is a digit to str.isdigit but int() refuses it (it was a 500).
_WHOLE = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class Preferences:
    code: int | None = None
    error: str | None = None
    job_fail: bool = False
    latency_ms: int = 0


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed([{"path": "header.Prefer", "message": message}],
                            "The Prefer header is not understood by the mock.")


def parse(values: list[str]) -> Preferences:
    prefs: dict[str, str] = {}
    for value in values:
        for token in value.split(","):
            name, _, val = token.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = val.strip().strip('"')
    code = error = None
    if "code" in prefs:
        if not _WHOLE.fullmatch(prefs["code"]) or not 100 <= int(prefs["code"]) <= 599:
            raise _bad("code must be an HTTP status, for example code=409")
        code = int(prefs["code"])
    if "error" in prefs:
        error = prefs["error"].upper()
        if error not in STATUS_BY_CODE:
            raise _bad("error must be one of " + ", ".join(STATUS_BY_CODE))
    if "job" in prefs and prefs["job"] != "fail":
        raise _bad("job takes only the value fail")
    latency = 0
    if "latency" in prefs:
        if not _WHOLE.fullmatch(prefs["latency"]) or int(prefs["latency"]) > MAX_LATENCY_MS:
            raise _bad(f"latency must be whole milliseconds from 0 to {MAX_LATENCY_MS}")
        latency = int(prefs["latency"])
    return Preferences(code, error, prefs.get("job") == "fail", latency)


def documented_example(operation_id: str, status: int) -> tuple[Any, dict[str, Any]] | None:
    """The first example of the operation's response with this status, and its headers."""
    op = operations.table()[operation_id].node
    response = op["responses"].get(str(status))
    if response is None:
        return None
    response = spec.resolve(response)
    media = spec.resolve(response.get("content", {}).get("application/json", {}))
    if "example" in media:
        return media["example"], response.get("headers", {})
    for example in (media.get("examples") or {}).values():
        return spec.resolve(example)["value"], response.get("headers", {})
    return None, response.get("headers", {})


def forced_response(operation_id: str, prefs: Preferences, request_id: str,
                    success_statuses: set[int]) -> Stored | ApiError | None:
    """What `code=` or `error=` asks for; None when the request should run normally."""
    if prefs.error:
        headers = {"Retry-After": "1"} if prefs.error in ("RATE_LIMITED",
                                                          "IDEMPOTENCY_IN_PROGRESS") else {}
        return ApiError(f"Forced by Prefer: error={prefs.error}.", code=prefs.error,
                        headers=headers, details=spec.documented_error_details(prefs.error))
    if prefs.code is None or prefs.code in success_statuses:
        return None
    found = documented_example(operation_id, prefs.code)
    if found is None:
        raise _bad(f"{operation_id} documents no {prefs.code} response")
    body, declared = found
    headers = {"X-Request-Id": request_id}
    if "Retry-After" in declared:
        headers["Retry-After"] = "1"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {"error": {**body["error"], "requestId": request_id}}
        if body["error"].get("code") in STATUS_BY_CODE and \
                STATUS_BY_CODE[body["error"]["code"]] != prefs.code:
            body["error"]["code"] = "INTERNAL"
    if body is None:
        return Stored(prefs.code, headers, "")
    headers["Content-Type"] = "application/json"
    return Stored(prefs.code, headers, json.dumps(body, separators=(",", ":")))
