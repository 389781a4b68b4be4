"""Injected faults (D9 `/__mock/faults`): fail the next N matching requests.

Faults live in the store, so every worker sees them and each is used up exactly N times.
A fault answers with a status and code, waits, or drops the connection.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mock import spec
from mock.domain import ids
from mock.domain.errors import STATUS_BY_CODE, ApiError
from mock.store.base import Store, Tx
from mock.web import state
from mock.web.auth import operation_id
from mock.web.outer import DropConnection

KIND, KEY = "faults", "active"


def _code_for(status: int) -> str:
    for code, s in STATUS_BY_CODE.items():
        if s == status:
            return code
    return "INTERNAL" if status >= 500 else "VALIDATION_FAILED"


def normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Check and complete a fault definition; raises ValueError with a readable reason."""
    allowed = {"match", "count", "status", "code", "delayMs", "drop", "message"}
    extra = set(spec) - allowed
    if extra:
        raise ValueError(f"unknown fields: {', '.join(sorted(extra))}")
    match = spec.get("match") or {}
    if not isinstance(match, dict) or set(match) - {"method", "path", "operationId"}:
        raise ValueError("match takes method, path (a regular expression) and operationId")
    if "path" in match:
        try:
            re.compile(match["path"])
        except re.error as exc:
            raise ValueError(f"match.path is not a regular expression: {exc}") from None
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100000:
        raise ValueError("count must be an integer from 1 to 100000")
    code, status = spec.get("code"), spec.get("status")
    if code is not None and code not in STATUS_BY_CODE:
        raise ValueError(f"code must be one of {', '.join(STATUS_BY_CODE)}")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError("status must be an integer from 400 to 599")
    delay = spec.get("delayMs", 0)
    if not isinstance(delay, int) or not 0 <= delay <= 60000:
        raise ValueError("delayMs must be an integer from 0 to 60000")
    drop = bool(spec.get("drop", False))
    if code is None and status is None and not delay and not drop:
        raise ValueError("a fault needs at least one of status, code, delayMs or drop")
    if code is not None and status is None:
        status = STATUS_BY_CODE[code]
    if status is not None and code is None:
        code = _code_for(status)
    return {"id": ids.ulid_id("flt"), "match": match, "remaining": count, "status": status,
            "code": code, "delayMs": delay, "drop": drop, "message": spec.get("message")}


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
    return ((not m.get("method") or m["method"].upper() == method)
            and (not m.get("operationId") or m["operationId"] == op_id)
            and (not m.get("path") or re.search(m["path"], path) is not None))


def take(store: Store, method: str, path: str, op_id: str | None) -> dict[str, Any] | None:
    """Use up one firing of the first matching fault, atomically."""
    def pick(tx: Tx) -> dict[str, Any] | None:
        doc = tx.get(KIND, KEY)
        if not doc:
            return None
        for fault in doc["faults"]:
            if fault["remaining"] > 0 and _matches(fault, method, path, op_id):
                fault["remaining"] -= 1
                doc["faults"] = [f for f in doc["faults"] if f["remaining"] > 0]
                tx.put(KIND, KEY, doc)
                return fault
        return None

    return store.atomic(pick)


class FaultMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fault = take(state.current().service.store, scope["method"], scope["path"],
                         operation_id(scope))
            if fault is not None:
                if fault["delayMs"]:
                    await asyncio.sleep(fault["delayMs"] / 1000)
                if fault["drop"]:
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-length", b"1000")]})
                    raise DropConnection()
                if fault["code"]:
                    raise ApiError(fault.get("message") or "Injected fault.",
                                   spec.documented_error_details(fault["code"]),
                                   code=fault["code"], status=fault["status"])
        await self.app(scope, receive, send)
