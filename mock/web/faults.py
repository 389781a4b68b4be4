"""Injected faults (D9 `/__mock/faults`): fail the next N matching requests.

Faults live in the store, so every worker sees them and each is used up exactly N times.
A fault answers with a status and code, waits, or drops the connection.

The body's shape is checked against the control API's own schema (`mock/control.yaml`) before
`normalize` sees it; `normalize` adds what a schema cannot say: the code and status agree with
D5, and the path is a pattern RE2 accepts. Patterns run on RE2, whose matching time is linear
in the path's length, so no pattern can backtrack catastrophically; and they run outside the
store's transaction: `take` reads the armed faults, matches in Python, then uses up the chosen
fault in a short transaction of its own (a worker that lost the race looks again).

Bounded: at most `MAX_FAULTS` faults are armed at once (another is 409 CONFLICT), a pattern
has at most `MAX_PATTERN` characters, and each pattern is compiled once per process (a cache
of compiled programs by pattern, `2 * MAX_FAULTS` of them): every request matched every armed
pattern compiled anew, and 130 faults made each request take 11-22 s.

A fault answers only what the contract lets its operation answer (`check_contract`): a status
the operation documents in openapi.yaml (500, 502, 503 and 504 are documented on every
operation). A fault without `match.operationId` may only use a status that every operation it
could hit documents: every operation of `match.method` when given, else every operation (its
path pattern is not analysed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import re2
from starlette.types import ASGIApp, Receive, Scope, Send

from layers_kit.contract import operations, spec
from layers_kit.mock.domain import ids
from layers_kit.mock.domain.errors import STATUS_BY_CODE, ApiError, Conflict
from layers_kit.mock.store.base import Store, Tx
from layers_kit.mock.web import state
from layers_kit.mock.web.outer import DropConnection, drop_connection

KIND, KEY = "faults", "active"
MAX_FAULTS = 32  # armed at once; one more is 409 CONFLICT
MAX_PATTERN = 200  # characters of match.path (control.yaml says so too)
# D5 codes whose answer carries Retry-After (a fault must keep the contract it imitates).
RETRY_AFTER_CODES = frozenset({"RATE_LIMITED", "IDEMPOTENCY_IN_PROGRESS"})
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the caller's 422, not a log line
_RE2_OPTIONS.max_mem = 1 << 20  # bounds the automaton a pattern may build (1 MiB each)


class _QuietDrop(logging.Filter):
    """uvicorn logs a traceback for every exception that ends a request; an injected drop is
    asked for, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrop())


def _code_for(status: int) -> str:
    for code, s in STATUS_BY_CODE.items():
        if s == status:
            return code
    return "INTERNAL"  # the schema lets through only D5 statuses and 5xx


def compile_path(pattern: str) -> Any:
    """The RE2 program of a fault's path pattern; ValueError when RE2 refuses it."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"match.path is not a pattern RE2 accepts ({reason}); RE2 has no "
                         "backreferences or lookaround") from None


@functools.lru_cache(maxsize=2 * MAX_FAULTS)
def program(pattern: str) -> Any:
    """The compiled program of an armed pattern, compiled once per process."""
    return compile_path(pattern)


def normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Complete a fault the control schema accepted; ValueError for what D5 forbids."""
    match = dict(spec.get("match") or {})
    if "method" in match:
        match["method"] = match["method"].upper()
    if "path" in match:
        if len(match["path"]) > MAX_PATTERN:
            raise ValueError(f"match.path has more than {MAX_PATTERN} characters")
        compile_path(match["path"])
    code, status = spec.get("code"), spec.get("status")
    if code is not None and status is not None:
        agrees = STATUS_BY_CODE[code] == status or (code == "INTERNAL" and status >= 500)
        if not agrees:
            raise ValueError(f"code {code} travels with status {STATUS_BY_CODE[code]} in D5"
                             + (" (INTERNAL with any 5xx)" if status >= 500 else "")
                             + f", not {status}")
    if code is not None and status is None:
        status = STATUS_BY_CODE[code]
    if status is not None and code is None:
        code = _code_for(status)
    delay = spec.get("delayMs", 0)
    drop = spec.get("drop", False)
    if code is None and not delay and not drop:
        raise ValueError("a fault needs at least one of status, code, a delayMs above 0 "
                         "or drop: true")
    return {"id": ids.ulid_id("flt"), "match": match, "remaining": spec.get("count", 1),
            "status": status, "code": code, "delayMs": delay, "drop": drop,
            "message": spec.get("message")}


def documented(match: dict[str, Any]) -> tuple[frozenset[int], str]:
    """The statuses a fault of this match may answer, and what they are documented by."""
    table = operations.table()
    op_id = match.get("operationId")
    if op_id:
        ops = [table.by_id[op_id]]
        what = op_id
    else:
        method = match.get("method")
        ops = [op for op in table if not method or op.method == method] or list(table)
        what = (f"every {method} operation" if method and any(op.method == method
                for op in table) else "every operation") + " (no match.operationId)"
    sets = [frozenset(int(s) for s in op.statuses if s.isdigit()) for op in ops]
    return frozenset.intersection(*sets), what


def check_contract(fault: dict[str, Any]) -> None:
    """ValueError when the fault would answer what the contract does not let the operations
    it can hit answer (a 402 on getContent, a 413 on a GET, a 599 anywhere)."""
    status = fault["status"]
    if status is None:
        return
    allowed, what = documented(fault["match"])
    if status not in allowed:
        raise ValueError(f"status {status} is not documented by {what} in openapi.yaml; it "
                         f"may answer {', '.join(str(s) for s in sorted(allowed))}")


async def add(store: Store, fault: dict[str, Any]) -> None:
    def put(tx: Tx) -> None:
        doc = tx.get(KIND, KEY) or {"faults": []}
        armed = [f for f in doc["faults"] if f["remaining"] > 0]
        if len(armed) >= MAX_FAULTS:
            raise Conflict(f"{MAX_FAULTS} faults are armed already, the most the mock keeps; "
                           "let some fire or disarm them (DELETE /__mock/faults).",
                           {"limit": MAX_FAULTS})
        doc["faults"] = [*armed, fault]
        tx.put(KIND, KEY, doc)

    await store.transact(put)


async def listing(store: Store) -> list[dict[str, Any]]:
    return (await store.transact(lambda tx: tx.get(KIND, KEY)) or {"faults": []})["faults"]


async def clear(store: Store) -> None:
    await store.transact(lambda tx: tx.delete(KIND, KEY))


def _matches(fault: dict[str, Any], method: str, path: str, op_id: str | None) -> bool:
    m = fault["match"]
    return ((not m.get("method") or m["method"] == method)
            and (not m.get("operationId") or m["operationId"] == op_id)
            and (not m.get("path") or program(m["path"]).search(path) is not None))


async def take(store: Store, method: str, path: str,
               op_id: str | None) -> dict[str, Any] | None:
    """Use up one firing of the first matching fault; the matching runs outside any
    transaction, only the count's decrement inside one. With no fault armed (the usual case)
    it costs one plain read of the store and no transaction."""
    for _ in range(5):  # another worker may use up the chosen fault first: look again
        doc = await store.peek(KIND, KEY)
        armed = (doc or {"faults": []})["faults"]
        chosen = next((f for f in armed if f["remaining"] > 0
                       and _matches(f, method, path, op_id)), None)
        if chosen is None:
            return None

        def use(tx: Tx, fault_id: str = chosen["id"]) -> dict[str, Any] | None:
            doc = tx.get(KIND, KEY) or {"faults": []}
            for fault in doc["faults"]:
                if fault["id"] == fault_id and fault["remaining"] > 0:
                    fault["remaining"] -= 1
                    doc["faults"] = [f for f in doc["faults"] if f["remaining"] > 0]
                    tx.put(KIND, KEY, doc)
                    return fault
            return None

        used = await store.transact(use)
        if used is not None:
            return used
    return None


def fault_error(fault: dict[str, Any], allowed: tuple[str, ...] | None = None) -> ApiError:
    """The D5 answer of a fault, with Retry-After where the contract promises it (and on a
    503, which tells when to come back as the mock's own store stalls do), and Allow on a
    405 (the path's methods)."""
    retry = fault["code"] in RETRY_AFTER_CODES or fault["status"] == 503
    headers = {"Retry-After": "1"} if retry else {}
    if fault["status"] == 405:
        headers["Allow"] = ", ".join(allowed or ())
    return ApiError(fault.get("message") or None, spec.documented_error_details(fault["code"]),
                    code=fault["code"], status=fault["status"], headers=headers)


class FaultMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            st = state.current()
            fault = await take(st.service.store, scope["method"], scope["path"],
                               st.operation_id)
            if fault is not None:
                if fault["delayMs"]:
                    await asyncio.sleep(fault["delayMs"] / 1000)
                if fault["drop"]:  # no answer at all: no status line (chaos.py)
                    await drop_connection(scope, send)
                if fault["code"]:
                    raise fault_error(fault, st.allowed)
        await self.app(scope, receive, send)
