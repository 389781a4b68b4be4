"""Idempotency (D6), in one place: claim, execute, record or release, replay.

One record per (API key, Idempotency-Key) holds the first response. `respond` is the whole
protocol: it claims the key atomically (so of many concurrent duplicates exactly one runs), runs
the operation, and writes the response to keep in the SAME transaction as the operation's own
writes (an acknowledged 202 and its replay record land together or not at all); an outcome that
is not kept releases the claim so that a corrected retry runs. A claim whose process died lapses
after a lease, so the key is not stuck.

Bounded: an API key's records are listed in order of creation (a paged list, `fifo.py`), and
past `limit` records (`--idempotency-max-keys`, 10,000) the oldest page of 32 is forgotten
first; each record also expires after the TTL. A client minting a new key per retry added
10 MiB/s of records kept for a day.

The response is opaque here (`Stored`: status, headers, body text, made by the web layer): this
module decides what is kept and when, not what an answer looks like.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from layers_kit.mock.domain import fifo
from layers_kit.mock.domain.errors import (
    STORED_ERROR_CODES,
    ApiError,
    IdempotencyConflict,
    IdempotencyInProgress,
)
from layers_kit.mock.store.base import Nested, Store, Tx

LEASE_SECONDS = 60.0
MAX_KEYS = 10_000  # records per API key at most (the default of --idempotency-max-keys)
KEYS = "idem-keys"  # the paged list of an API key's records, oldest first
T = TypeVar("T")


@dataclass(frozen=True)
class Stored:
    """A response as first sent, kept for replays byte for byte."""

    status: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key of one request: its scope (the API key), the key and the fingerprint."""

    scope: str
    key: str
    fingerprint: str

    @property
    def doc_key(self) -> str:
        return f"{self.scope}:{hashlib.sha256(self.key.encode()).hexdigest()}"


def fingerprint(method: str, path: str, body: Any) -> str:
    """D6: method, concrete path and the canonical JSON of the body."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{method.upper()} {path}\n".encode() + canonical).hexdigest()


def kept(err: ApiError) -> bool:
    """D6: the error outcomes of the operation that a key remembers."""
    return err.code in STORED_ERROR_CODES


_UNREAD: Any = object()  # a record the caller has not read (None: read, and absent)


def lookup_in(tx: Tx, claim: Claim, now: float, rec: Any = _UNREAD) -> Stored | None:
    """What the key says. None: go ahead. A Stored: replay it. Raises the two D6 conflicts.
    `rec`: the key's record when the caller read it already."""
    if rec is _UNREAD:
        rec = tx.get("idem", claim.doc_key)
    if rec is not None and rec["fingerprint"] != claim.fingerprint:
        raise IdempotencyConflict()
    if rec is None or (rec["state"] == "claimed" and rec["leaseUntil"] < now):
        return None
    if rec["state"] == "claimed":
        raise IdempotencyInProgress()
    r = rec["response"]
    return Stored(r["status"], r["headers"], r["body"])


def _put(tx: Tx, claim: Claim, doc: dict[str, Any], ttl: float, limit: int,
         prev: Any = _UNREAD) -> None:
    """Write a record; a new one is listed under its API key, and past `limit` records the
    oldest page of them is forgotten (a record written again since keeps its newer slot).
    `prev`: the record as the caller read it in this transaction (one read, not two)."""
    if prev is _UNREAD:
        prev = tx.get("idem", claim.doc_key)
    if prev is not None and "slot" in prev:
        doc["slot"] = prev["slot"]
    else:
        h = fifo.push(tx, KEYS, claim.scope, claim.doc_key, ttl=ttl)
        doc["slot"] = h["last"]
        if fifo.pages(h) > max(1, limit // fifo.PAGE) + 1:
            first = h["first"]
            for old in fifo.drop_first(tx, KEYS, claim.scope, h, ttl=ttl):
                rec = tx.get("idem", old)
                if rec is not None and rec.get("slot") == first and old != claim.doc_key:
                    tx.delete("idem", old)
    tx.put("idem", claim.doc_key, doc, ttl=ttl)


def claim_in(tx: Tx, claim: Claim, ttl: float, now: float,
             limit: int = MAX_KEYS) -> Stored | None:
    """Claim the key (`lookup_in`, then hold it while the operation runs elsewhere)."""
    replay = lookup_in(tx, claim, now)
    if replay is None:
        _put(tx, claim, {"fingerprint": claim.fingerprint, "state": "claimed",
                         "leaseUntil": now + LEASE_SECONDS}, ttl, limit)
    return replay


def record_in(tx: Tx, claim: Claim, response: Stored, ttl: float,
              limit: int = MAX_KEYS, prev: Any = _UNREAD) -> None:
    """Keep the response for replays (inside the operation's own transaction)."""
    _put(tx, claim, {
        "fingerprint": claim.fingerprint, "state": "done",
        "response": {"status": response.status, "headers": response.headers,
                     "body": response.body},
    }, ttl, limit, prev)


def release_in(tx: Tx, claim: Claim) -> None:
    """Forget a claim whose outcome is not kept (D6), so a corrected retry can run."""
    rec = tx.get("idem", claim.doc_key)
    if rec is not None and rec["state"] == "claimed":
        tx.delete("idem", claim.doc_key)


async def respond(store: Store, claim: Claim | None, ttl: float, *,
                  execute: Callable[[Tx], Stored],
                  on_error: Callable[[ApiError], Stored],
                  before: Callable[[], Awaitable[None]] | None = None,
                  now: Callable[[], float] = time.time,
                  limit: int = MAX_KEYS) -> tuple[Stored, bool]:
    """Answer one request under D6; returns the response and whether it is a replay.

    `execute` runs the operation in a store transaction and renders its answer; an ApiError it
    raises rolls that transaction back and is rendered by `on_error`. `before` runs after the
    claim and before the operation (a requested latency: the key is held meanwhile). The claim's
    own conflicts (IDEMPOTENCY_CONFLICT, _IN_PROGRESS) are raised, never kept.

    With a key and nothing to wait for, the lookup, the operation and the record are one
    transaction: no other request can see the key while the operation runs, so there is no
    claim to write or release (one transaction where there were three; under load the
    claim's own commit was a third of a keyed request's store work). With a latency to wait,
    the claim is written first and held meanwhile: a second request then sees
    IDEMPOTENCY_IN_PROGRESS, as D6 says.
    """
    if claim is not None and before is None:
        return await store.transact(lambda tx: _at_once(tx, claim, ttl, now(), execute,
                                                        on_error, limit))
    if claim is not None:
        replay = await store.transact(lambda tx: claim_in(tx, claim, ttl, now(), limit))
        if replay is not None:
            return replay, True
    try:
        if before is not None:
            await before()

        def run(tx: Tx) -> Stored:
            out = execute(tx)
            if claim is not None:
                record_in(tx, claim, out, ttl, limit)
            return out

        return await store.transact(run), False
    except ApiError as err:
        out = on_error(err)
        if claim is not None:
            if kept(err):
                await store.transact(lambda tx: record_in(tx, claim, out, ttl, limit))
            else:
                await store.transact(lambda tx: release_in(tx, claim))
        return out, False
    except BaseException:
        if claim is not None:  # cut short (client gone, server stopping, a bug): free the key
            await store.transact(lambda tx: release_in(tx, claim))
        raise


def _at_once(tx: Tx, claim: Claim, ttl: float, now: float, execute: Callable[[Tx], Stored],
             on_error: Callable[[ApiError], Stored], limit: int) -> tuple[Stored, bool]:
    """Look the key up, run the operation and keep its answer, in the caller's transaction.
    The operation runs nested, so a refusal leaves none of its writes behind."""
    # The key's record is read once here and handed to record_in (the operation never writes
    # it): one read and one JSON copy fewer per keyed request.
    rec = tx.get("idem", claim.doc_key)
    replay = lookup_in(tx, claim, now, rec)
    if replay is not None:
        return replay, True
    op = Nested(tx)
    try:
        out = execute(op)
    except ApiError as err:
        out = on_error(err)
        if kept(err):
            record_in(tx, claim, out, ttl, limit, rec)
        return out, False
    op.commit()
    record_in(tx, claim, out, ttl, limit, rec)
    return out, False


# Synchronous forms for tools and tests that hold a store directly.

def begin(store: Store, scope: str, key: str, fp: str, ttl: float) -> Stored | None:
    return store.atomic(lambda tx: claim_in(tx, Claim(scope, key, fp), ttl, time.time()))


def record(tx: Tx, scope: str, key: str, fp: str, response: Stored, ttl: float) -> None:
    record_in(tx, Claim(scope, key, fp), response, ttl)


def release(store: Store, scope: str, key: str) -> None:
    store.atomic(lambda tx: release_in(tx, Claim(scope, key, "")))
