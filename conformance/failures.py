"""Typed outcomes of a check: a violation of a named rule, or a reason it could not run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Exchange:
    """One request and its response, keys masked, as a report shows them."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Violation(AssertionError):
    """The target broke a rule: what was expected, what was received."""

    def __init__(self, message: str, *, expected: str | None = None,
                 received: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.received = received


class NotRunnable(Exception):
    """The check needs an option that was not given (or a state the target would not reach)."""

    def __init__(self, reason: str, option: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.option = option


class Unreachable(Exception):
    """The target does not answer HTTP at all (exit status 2)."""


def expect(condition: bool, message: str, *, expected: Any = None, received: Any = None) -> None:
    """Raise a Violation unless `condition` holds."""
    if not condition:
        raise Violation(message, expected=None if expected is None else str(expected)[:500],
                        received=None if received is None else str(received)[:500])
