"""Idempotency (D6): one record per (API key, Idempotency-Key) holding the first response.

`begin` claims the key atomically, so of many concurrent duplicates exactly one runs the
operation. The winner's response is written by `record` in the same transaction as the
operation's own writes: an acknowledged 202 and its replay record land together or not at all.
A claim that never finishes (the process died) lapses after a lease, so the key is not stuck.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from mock.domain.errors import IdempotencyConflict, IdempotencyInProgress
from mock.store.base import Store, Tx

LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class Stored:
    status: int
    headers: dict[str, str]
    body: str


def fingerprint(method: str, path: str, body: Any) -> str:
    """D6: method, concrete path and the canonical JSON of the body."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{method.upper()} {path}\n".encode() + canonical).hexdigest()


def _doc_key(scope: str, key: str) -> str:
    return f"{scope}:{hashlib.sha256(key.encode()).hexdigest()}"


def begin(store: Store, scope: str, key: str, fp: str, ttl: float) -> Stored | None:
    """Claim the key. None: go ahead. A Stored: replay it. Raises the two D6 conflicts."""
    doc_key = _doc_key(scope, key)

    def claim(tx: Tx) -> Stored | None:
        now = time.time()
        rec = tx.get("idem", doc_key)
        if rec is not None and rec["fingerprint"] != fp:
            raise IdempotencyConflict()
        if rec is None or (rec["state"] == "claimed" and rec["leaseUntil"] < now):
            tx.put("idem", doc_key, {"fingerprint": fp, "state": "claimed",
                                     "leaseUntil": now + LEASE_SECONDS}, ttl=ttl)
            return None
        if rec["state"] == "claimed":
            raise IdempotencyInProgress()
        r = rec["response"]
        return Stored(r["status"], r["headers"], r["body"])

    return store.atomic(claim)


def record(tx: Tx, scope: str, key: str, fp: str, response: Stored,
           ttl: float) -> None:
    """Keep the response for replays (call inside the operation's own transaction)."""
    tx.put("idem", _doc_key(scope, key), {
        "fingerprint": fp, "state": "done",
        "response": {"status": response.status, "headers": response.headers,
                     "body": response.body},
    }, ttl=ttl)


def release(store: Store, scope: str, key: str) -> None:
    """Forget a claim whose outcome is not kept (D6), so a corrected retry can run."""
    doc_key = _doc_key(scope, key)

    def drop(tx: Tx) -> None:
        rec = tx.get("idem", doc_key)
        if rec is not None and rec["state"] == "claimed":
            tx.delete("idem", doc_key)

    store.atomic(drop)
