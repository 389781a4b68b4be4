"""Injected faults (D9 `/__mock/faults`): fail the next N matching requests.

Faults live in the store, so every worker sees them and each is used up exactly N times.
A fault answers with a status and code, waits, or drops the connection.

The body's shape is checked against the control API's own schema (`mock/control.yaml`) before
`normalize` sees it; `normalize` adds what a schema cannot say: the code and status agree with
D5, and the path is a pattern RE2 accepts. Patterns run on RE2, whose matching time is linear
in the path's length, so no pattern can backtrack catastrophically; and they run outside the
store's transaction: `take` reads the armed faults, matches in Python, then uses up the chosen
fault in a short transaction of its own (a worker that lost the race looks again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import re2
from starlette.types import ASGIApp, Receive, Scope, Send

from layers_kit.contract import spec
from layers_kit.mock.domain import ids
from layers_kit.mock.domain.errors import STATUS_BY_CODE, ApiError
from layers_kit.mock.store.base import Store, Tx
from layers_kit.mock.web import state
from layers_kit.mock.web.outer import DropConnection

KIND, KEY = "faults", "active"
# D5 codes whose answer carries Retry-After (a fault must keep the contract it imitates).
RETRY_AFTER_CODES = frozenset({"RATE_LIMITED", "IDEMPOTENCY_IN_PROGRESS"})
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the caller's 422, not a log line
_RE2_OPTIONS.max_mem = 8 << 20  # bounds the automaton a huge pattern could build



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


def normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Complete a fault the control schema accepted; ValueError for what D5 forbids."""
    match = dict(spec.get("match") or {})
    if "method" in match:
        match["method"] = match["method"].upper()
    if "path" in match:
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


def add(store: Store, fault: dict[str, Any]) -> None:
    def put(tx: Tx) -> None:
        doc = tx.get(KIND, KEY) or {"faults": []}
        doc["faults"].append(fault)
        tx.put(KIND, KEY, doc)

    store.atomic(put)


def listing(store: Store) -> list[dict[str, Any]]:
    return (store.atomic(lambda tx: tx.get(KIND, KEY)) or {"faults": []})["faults"]


def clear(store: Store) -> None:
    store.atomic(lambda tx: tx.delete(KIND, KEY))


def _matches(fault: dict[str, Any], method: str, path: str, op_id: str | None) -> bool:
    m = fault["match"]
    return ((not m.get("method") or m["method"] == method)
            and (not m.get("operationId") or m["operationId"] == op_id)
            and (not m.get("path") or compile_path(m["path"]).search(path) is not None))


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


def fault_error(fault: dict[str, Any]) -> ApiError:
    """The D5 answer of a fault, with Retry-After where the contract promises it (and on a
    503, which tells when to come back as the mock's own store stalls do)."""
    retry = fault["code"] in RETRY_AFTER_CODES or fault["status"] == 503
    headers = {"Retry-After": "1"} if retry else {}
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
                if fault["drop"]:
                    # A started response that never delivers its body: the server can only
                    # cut the connection (the journal records it as dropped, status 0).
                    st.dropped = True
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-length", b"1000")]})
                    raise DropConnection()
                if fault["code"]:
                    raise fault_error(fault)
        await self.app(scope, receive, send)
