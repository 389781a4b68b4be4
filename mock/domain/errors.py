"""The API's errors as small declarations; the web layer maps them to HTTP in one place (D5)."""

from __future__ import annotations

from typing import Any

# D5: every error code and the status it travels with.
STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_FAILED": 422,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN_SCOPE": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "APPROVAL_REQUIRED": 409,
    "IDEMPOTENCY_CONFLICT": 409,
    "IDEMPOTENCY_IN_PROGRESS": 409,
    "BILLING_EXHAUSTED": 402,
    "MODERATION_BLOCKED": 422,
    "PAYLOAD_TOO_LARGE": 413,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
}

# A readable default sentence per code, used when an error is produced on request (Prefer, faults).
DEFAULT_MESSAGES: dict[str, str] = {
    "VALIDATION_FAILED": "The request breaks the API contract.",
    "UNSUPPORTED_MEDIA_TYPE": "Send the body as application/json.",
    "UNAUTHENTICATED": "Send a valid API key in X-Api-Key or as Authorization Bearer.",
    "FORBIDDEN_SCOPE": "This API key lacks the scope this operation needs.",
    "NOT_FOUND": "No such resource exists in your organization.",
    "METHOD_NOT_ALLOWED": "This path does not accept that method.",
    "CONFLICT": "The resource is not in a state that allows this request.",
    "APPROVAL_REQUIRED": "Approve this container before scheduling it.",
    "IDEMPOTENCY_CONFLICT": "This Idempotency-Key was already used with a different request.",
    "IDEMPOTENCY_IN_PROGRESS": (
        "A request with this Idempotency-Key is still executing; retry shortly."
    ),
    "BILLING_EXHAUSTED": "Your organization does not have enough credits for this operation.",
    "MODERATION_BLOCKED": "The brief was refused by the content safety check.",
    "PAYLOAD_TOO_LARGE": "The request body is larger than 1048576 bytes.",
    "RATE_LIMITED": "Too many requests in this endpoint class; retry after the given seconds.",
    "INTERNAL": "Something went wrong on our side; retry later.",
}


class ApiError(Exception):
    """An error the API answers with; `code` picks the status (D5)."""

    code = "INTERNAL"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None,
                 *, code: str | None = None, headers: dict[str, str] | None = None,
                 status: int | None = None) -> None:
        if code is not None:
            self.code = code
        self._status = status
        self.message = message or DEFAULT_MESSAGES[self.code]
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self._status or STATUS_BY_CODE[self.code]


class ValidationFailed(ApiError):
    code = "VALIDATION_FAILED"

    def __init__(self, issues: list[dict[str, str]], message: str | None = None) -> None:
        n = len(issues)
        super().__init__(
            message or f"The request has {n} invalid field{'s' if n != 1 else ''}.",
            {"issues": issues},
        )


class Unauthenticated(ApiError):
    code = "UNAUTHENTICATED"


class ForbiddenScope(ApiError):
    code = "FORBIDDEN_SCOPE"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This API key lacks the {scope} scope.", {"requiredScope": scope})


class NotFound(ApiError):
    code = "NOT_FOUND"


class Conflict(ApiError):
    code = "CONFLICT"


class ApprovalRequired(ApiError):
    code = "APPROVAL_REQUIRED"


class IdempotencyConflict(ApiError):
    code = "IDEMPOTENCY_CONFLICT"


class IdempotencyInProgress(ApiError):
    code = "IDEMPOTENCY_IN_PROGRESS"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class BillingExhausted(ApiError):
    code = "BILLING_EXHAUSTED"

    def __init__(self, cost: int, available: int) -> None:
        super().__init__(
            f"This operation costs {cost} credits and {available} are available.",
            {"cost": cost, "available": available},
        )


class ModerationBlocked(ApiError):
    code = "MODERATION_BLOCKED"

    def __init__(self, fields: list[str]) -> None:
        super().__init__("The brief was refused by the content safety check.", {"fields": fields})


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    code = "UNSUPPORTED_MEDIA_TYPE"


# D6: the outcomes an idempotency record keeps. Everything else is answered but not stored,
# so that a corrected retry with the same key can succeed.
STORED_ERROR_CODES = frozenset(
    {"NOT_FOUND", "CONFLICT", "APPROVAL_REQUIRED", "BILLING_EXHAUSTED", "MODERATION_BLOCKED"}
)


def envelope(err: ApiError, request_id: str) -> dict[str, Any]:
    """D5: the one error body of the API."""
    inner: dict[str, Any] = {"code": err.code, "message": err.message, "requestId": request_id}
    if err.details is not None:
        inner["details"] = err.details
    return {"error": inner}
