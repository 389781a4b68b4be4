"""Typed ends of a check, and the evidence a developer acts on (D10 verdicts).

A check returns normally (`passed`) or raises one of:

- `Violation`: the target broke the rule (`failed`, the only verdict that makes exit 1);
- `NotRunnable`: an input is missing, named by the option that would provide it (`not run`);
- `Inconclusive`: the kit could not observe enough, or the target refused the setup for its
  own reasons (credits, rate limits after retries, a key lacking a scope); it says what it
  needed (`inconclusive`).

Any other exception is the kit's own failure (`error`), never counted against the target.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    operation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Violation(AssertionError):
    """The target broke a rule: what was expected, what was received, and the exchange that
    shows it (the decisive one, when the check names it)."""

    def __init__(self, message: str, *, expected: Any = None, received: Any = None,
                 exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = None if expected is None else _short(expected)
        self.received = None if received is None else _short(received)
        self.diff = field_diff(expected, received)
        self.exchange = exchange


class NotRunnable(Exception):
    """The check needs an option that was not given."""

    def __init__(self, reason: str, option: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.option = option


class Inconclusive(Exception):
    """The check could not judge: it names what it needed and did not get."""

    def __init__(self, reason: str, needed: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needed = needed


class TooLate(Inconclusive):
    """A race the check lost (the job moved on before the request that needed it running);
    the check tries again before it calls itself inconclusive."""


def retry_races(attempt: Callable[[], None], times: int = 5) -> None:
    """Run `attempt`; rerun it when it lost a race, up to `times` in all."""
    for i in range(times):
        try:
            attempt()
            return
        except TooLate:
            if i == times - 1:
                raise


class Unreachable(Exception):
    """The target does not answer HTTP at all (exit status 2)."""


class TransportTrouble(Unreachable):
    """A request got no answer: refused, reset, timed out or refused by TLS, after the retries
    that were safe. The network's (or the TLS setup's) fault, never the target's: the check is
    inconclusive and the run ends "could not judge" (exit status 2) unless a check failed."""

    def __init__(self, message: str, *, tls: bool = False) -> None:
        super().__init__(message)
        self.tls = tls


def _short(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"


def field_diff(expected: Any, received: Any, path: str = "", limit: int = 20) -> list[str]:
    """Field-level differences `path: expected X, received Y`, for dicts and lists; empty when
    either side is a plain value (the message already says it)."""
    out: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in list(a) + [k for k in b if k not in a]:
                sub = f"{at}.{k}" if at else str(k)
                if k not in b:
                    out.append(f"{sub}: expected {_short(a[k], 120)}, missing")
                elif k not in a:
                    continue  # a field the check did not name: tolerated
                else:
                    walk(a[k], b[k], sub)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{at}[{i}]")
        elif a != b:
            out.append(f"{at or '(value)'}: expected {_short(a, 120)}, "
                       f"received {_short(b, 120)}")

    if isinstance(expected, dict | list) and isinstance(received, dict | list):
        walk(expected, received, path)
    return out


def expect(condition: bool, message: str, *, expected: Any = None, received: Any = None,
           response: Any = None) -> None:
    """Raise a Violation unless `condition` holds; `response` names the decisive exchange."""
    if not condition:
        raise Violation(message, expected=expected, received=received,
                        exchange=getattr(response, "exchange", None))


def subset(expected: dict[str, Any], received: Any) -> dict[str, Any]:
    """The named fields of `received` only: checks compare what their rule names, never whole
    bodies, so fields the schema allows an implementation to add are tolerated."""
    if not isinstance(received, dict):
        return {"(body)": received}
    return {k: received.get(k, "<missing>") for k in expected}
