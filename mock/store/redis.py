"""Redis store: shared by processes on many hosts.

Transactions are optimistic, and queued by the event loop for one thread of the store's own,
which runs whatever queued up meanwhile as one batch (`GroupCommitter`): the batch's functions
run in order, each seeing the writes of those before it, reading documents from a cache this
process keeps; then one Lua script checks that every document the batch read is still at the
version it read (each value carries one), and applies all the writes and journal entries, or
changes nothing and returns the current value of each document that had changed. The cache
takes those values and the whole batch runs again. A function that raises leaves no write, and
its reads are checked like the others' (its decision rests on them).

A document not in the cache is read with one GET (an Idempotency-Key's record is presumed
absent instead, and checked by the script like any read). A document written unchanged keeps
its version, so the other workers' cached copies stay valid. So a warm request costs its share
of its batches' commit scripts (the fault check, the operation, the journal entry: three
batches, each one round trip shared by the requests queued meanwhile), where one GET per
document read plus a commit (and before that WATCH/MULTI, two per read plus two) cost 7 to 19.
Two workers writing the same document (every job start writes its org's credits and deadline
index) find it changed in their cache and run their batch twice; that is the price of the
cache, paid only by the documents both write.

`round_trips` counts the commands sent, so a test can hold a regenerate to its budget.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import redis

from layers_kit.mock.store.base import (
    STORE_TIMEOUT,
    BufferedTx,
    Doc,
    StoreUnavailable,
    make_room,
)
from layers_kit.mock.store.committer import Batched, GroupCommitter, Item, Outcome

T = TypeVar("T")
log = logging.getLogger("layers.mock")
_PREFIX = "layers-mock:"
_JOURNAL = f"{_PREFIX}journal"
_MAX_RETRIES = 200
# Attempts of a batch of several items before they are committed one at a time: a large
# batch, slow to run again, met another worker's commit on every attempt under the 2-worker
# regenerate load (200 in a row, 6 requests in one `make bench` run answered 500).
_SPLIT_AFTER = 8
_CACHE_SIZE = 10_000  # documents; past it the oldest are forgotten (base.make_room)

# Every value is a version and the document's JSON: b"\0", 16 bytes unique to that write (this
# process's random prefix and a counter), then the JSON. The commit script compares versions,
# not documents: a batch's reads no longer travel to Redis as whole documents to be compared
# byte for byte (measured: see bench/README.md). A value without the leading b"\0" (written by
# an older mock) is its own version, compared whole, as before.
#
# KEYS: the documents read, then the documents written, then the journal.
# ARGV: reads, writes, journal entries, journal size; then the version of what each read returned
# ("" when absent); then per write: "d" (delete) or "s", the value, a TTL in ms (0: none); then
# the journal entries. Returns {1} when applied; else {0, key, value, ...} for every read that
# changed ("" when now absent), and changes nothing.
_COMMIT = """
local reads, writes, entries = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stale = {0}
for i = 1, reads do
  local v = redis.call('GET', KEYS[i]) or ''
  local ver = v
  if string.byte(v, 1) == 0 then ver = string.sub(v, 1, 17) end
  if ver ~= ARGV[4 + i] then
    stale[#stale + 1] = KEYS[i]; stale[#stale + 1] = v
  end
end
if #stale > 1 then return stale end
local a = 5 + reads
for k = reads + 1, reads + writes do
  if ARGV[a] == 'd' then
    redis.call('DEL', KEYS[k])
  else
    local ttl = tonumber(ARGV[a + 2])
    if ttl > 0 then redis.call('SET', KEYS[k], ARGV[a + 1], 'PX', ttl)
    else redis.call('SET', KEYS[k], ARGV[a + 1]) end
  end
  a = a + 3
end
if entries > 0 then
  local j = KEYS[reads + writes + 1]
  for e = a, a + entries - 1 do redis.call('LPUSH', j, ARGV[e]) end
  redis.call('LTRIM', j, 0, tonumber(ARGV[4]) - 1)
end
return {1}
"""
_VERSIONED = 0  # the first byte of a versioned value
_VERSION_LEN = 17  # b"\0" and 16 bytes


def _version(raw: bytes) -> bytes:
    """What the commit script compares: a versioned value's version, an older value whole."""
    return raw[:_VERSION_LEN] if raw and raw[0] == _VERSIONED else raw


def _document(raw: bytes) -> bytes:
    """The JSON of a stored value."""
    return raw[_VERSION_LEN:] if raw[0] == _VERSIONED else raw


# Kinds whose documents are presumed absent when the cache does not know them (see _RedisTx._read)
_PRESUMED_ABSENT = frozenset({"idem"})


def _key(kind: str, key: str) -> str:
    return f"{_PREFIX}doc:{kind}:{key}"


class _RedisTx(BufferedTx):
    """One function's transaction in a batch: reads see the batch's earlier writes, then what
    the batch already read, then the cache, then Redis (a GET)."""

    def __init__(self, store: RedisStore, read: dict[str, bytes],
                 written: dict[str, bytes | None]) -> None:
        super().__init__()
        self._store = store
        self.read = read  # redis key -> the version the batch read (b"" when absent)
        self._written = written  # redis key -> raw value written earlier in the batch

    def _read(self, kind: str, key: str) -> Doc | None:
        k = _key(kind, key)
        if k in self._written:
            raw: bytes | None = self._written[k]
        elif kind in _PRESUMED_ABSENT and k not in self._store._cache and k not in self.read:
            # Not read: taken as absent, and the commit script checks it like any read (a
            # record that exists after all comes back as changed, and the batch runs again
            # with it). A keyed request's first read is its Idempotency-Key's record, nearly
            # always a fresh key: a GET round trip per keyed request saved (measured).
            raw = None
            self.read[k] = b""
        else:
            raw = self._store._cached(k)
            if k not in self.read:
                self.read[k] = b"" if raw is None else _version(raw)
        return None if raw is None else orjson.loads(_document(raw))


def _conflicting() -> StoreUnavailable:
    """A transaction that met other workers' writes on every attempt: a bounded answer the
    client may retry (503 with Retry-After), not a 500."""
    return StoreUnavailable(f"a transaction met other workers' writes {_MAX_RETRIES} times "
                            "in a row")


def _bounded(method: Callable[..., T]) -> Callable[..., T]:
    """A timeout or a lost connection becomes StoreUnavailable: a 503 with Retry-After."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (redis.TimeoutError, redis.ConnectionError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
    return call


class RedisStore(Batched):
    shared = True

    def __init__(self, url: str, *, journal_size: int, timeout: float = STORE_TIMEOUT) -> None:
        self.url = url
        # Timeouts on every call: a paused Redis answered nothing, for any request, forever.
        self._client = redis.Redis.from_url(url, socket_timeout=timeout,
                                            socket_connect_timeout=timeout)
        self._client.ping()
        self._sha = self._client.script_load(_COMMIT)
        # The batches' own connection (GET, EVALSHA), used under `_lock` only: a command sent
        # on it skips redis-py's pool and command dispatch, 72 against 112 us of CPU for a GET
        # and 146 against 234 us for a commit script (with hiredis; 131 and 320 us before,
        # without it), measured in process.
        self._conn = self._client.connection_pool.get_connection()
        self._check_after = 0.0  # monotonic time after which the connection is PINGed first
        self._journal_size = journal_size
        self.round_trips = 0
        self._lock = threading.Lock()  # the cache, and one batch at a time
        self._cache: dict[str, bytes | None] = {}
        self._fresh: set[str] = set()  # read with a GET in this attempt, not from the cache
        self._origin = b"\0" + os.urandom(8)  # versions this process writes start with it
        self._writes = itertools.count()  # the counter in this process's versions
        self._committer = GroupCommitter(self._run_batch, "store-redis", timeout=timeout)
        self._warn_without_persistence()

    def _stamp(self) -> bytes:
        """A new version: this process's random prefix and a counter (16 bytes after b"\\0")."""
        return self._origin + next(self._writes).to_bytes(8, "big")

    def _get(self, k: str) -> bytes | None:
        self.round_trips += 1
        return self._command("GET", k)

    def _command(self, *args: Any) -> Any:
        """One command on the batches' connection; the connection is dropped (and opened
        again by the next command) when the command did not complete."""
        conn = self._conn
        if time.monotonic() >= self._check_after:
            # Idle for a second or more: Redis may have closed the connection meanwhile (an
            # idle timeout, a restart). A PING finds out, and a closed connection is opened
            # again, so that a command is never sent on it (a commit script's reply lost with
            # the connection could not tell whether it ran).
            try:
                conn.send_command("PING", check_health=False)
                conn.read_response()
            except redis.ConnectionError:
                conn.disconnect()
        try:
            conn.send_packed_command(conn.pack_command(*args), check_health=False)
            reply = conn.read_response()
            self._check_after = time.monotonic() + 1.0
            return reply
        except redis.ResponseError:
            raise  # the reply was read whole: the connection is in step
        except BaseException:
            conn.disconnect()
            raise

    def _cached(self, k: str) -> bytes | None:
        """A document's value through the cache (inside a batch, under `_lock`)."""
        try:
            return self._cache[k]
        except KeyError:
            pass
        raw = self._get(k)
        self._fresh.add(k)
        self._remember({k: raw})
        return raw

    def _remember(self, values: dict[str, bytes | None]) -> None:
        make_room(self._cache, len(values), _CACHE_SIZE)
        # Exact-size already: values read come from Redis's replies, values written are a
        # version and orjson's bytes joined into a new object (orjson's own bytes keep their
        # 8 KiB write buffer: memory.py says why).
        self._cache.update(values)

    def _warn_without_persistence(self) -> None:
        """A Redis that keeps nothing on disk forgets the world when it restarts; the mock
        would then answer 404 for every fixture. Say so at start (see the README)."""
        try:
            conf = self._client.config_get("save")
            conf.update(self._client.config_get("appendonly"))
        except redis.RedisError:  # CONFIG may be disabled (managed Redis): nothing to tell
            return
        if not conf.get("save") and conf.get("appendonly") in ("no", b"no"):
            log.warning("Redis at %s keeps nothing on disk (no RDB snapshots, no AOF): if it "
                        "restarts, the mock's state and fixtures are gone until POST "
                        "/__mock/reset or a restart of the mock with --reset", self.url)

    # ---- transactions -----------------------------------------------------------------

    @_bounded
    def _run_batch(self, items: list[Item]) -> list[Outcome]:
        with self._lock:
            try:
                if len(items) == 1:
                    outcomes = self._commit(items, _MAX_RETRIES)
                    if outcomes is None:
                        raise _conflicting()
                    return outcomes
                outcomes = self._commit(items, _SPLIT_AFTER)
                if outcomes is None:  # kept meeting other workers' commits: one at a time
                    outcomes = []
                    for item in items:  # one still conflicting fails alone, writing nothing
                        one = self._commit([item], _MAX_RETRIES)
                        outcomes += [(False, _conflicting())] if one is None else one
                return outcomes
            except BaseException:
                self._cache.clear()
                raise

    def _commit(self, items: list[Item], tries: int) -> list[Outcome] | None:
        """Run `items` and commit them as one, again while what they read has changed, at
        most `tries` times; their outcomes, or None when every attempt met a change (nothing
        of theirs is written then)."""
        journal = [orjson.dumps(p) for kind, p in items if kind == "journal"]
        for _ in range(tries):
            outcomes, read, written, ttls = self._attempt(items)
            if not written and not journal and len(read) <= 1 and \
                    self._fresh.issuperset(read):
                return outcomes  # one GET, just sent, is consistent by itself
            stale = self._apply(read, written, ttls, journal)
            if not stale:
                self._remember(written)
                return outcomes
            self._remember(stale)
        return None

    def _attempt(self, items: list[Item]) -> tuple[list[Outcome], dict[str, bytes],
                                                   dict[str, bytes | None],
                                                   dict[str, float | None]]:
        """Run the batch's functions once, in order, against the cache."""
        self._fresh.clear()
        read: dict[str, bytes] = {}
        written: dict[str, bytes | None] = {}
        ttls: dict[str, float | None] = {}
        outcomes: list[Outcome] = []
        for kind, payload in items:
            if kind == "journal":
                outcomes.append((True, None))
                continue
            tx = _RedisTx(self, read, written)
            try:
                outcomes.append((True, payload(tx)))
            except (redis.TimeoutError, redis.ConnectionError):
                # The store, not the function, failed (a GET of a missing document timed
                # out): the whole batch is StoreUnavailable, never one function's outcome
                # (which made every request after the first stalled one a 500).
                raise
            except Exception as exc:  # its writes are dropped; its reads are still checked
                outcomes.append((False, exc))
                continue
            for (doc_kind, key), entry in tx.writes.items():
                k = _key(doc_kind, key)
                if entry is None:
                    written[k] = ttls[k] = None
                    continue
                # A document written as it was (a list's head, the deadline index: three of
                # a regenerate's twelve writes) keeps its version, and is not sent at all
                # without a TTL to refresh: a new version would make the other workers'
                # cached copy stale and their next batch run again, where the comparison of
                # whole documents never saw such writes.
                cur = written[k] if k in written else self._unchanged_base(k, read)
                if cur is not None and _document(cur) == entry[0]:
                    if entry[1] is None and k not in written:
                        continue
                    written[k] = cur
                else:
                    written[k] = self._stamp() + entry[0]
                ttls[k] = entry[1]
        return outcomes, read, written, ttls

    def _unchanged_base(self, k: str, read: dict[str, bytes]) -> bytes | None:
        """The value this attempt read for `k` (the commit script checks its version), or
        None when it did not read it."""
        if k not in read:
            return None
        raw = self._cache.get(k)
        return raw if raw is not None and _version(raw) == read[k] else None

    def _apply(self, read: dict[str, bytes], written: dict[str, bytes | None],
               ttls: dict[str, float | None], journal: list[bytes]) -> dict[str, bytes | None]:
        """The commit script; returns the reads that had changed (empty: applied)."""
        keys = [*read, *written]
        args: list[Any] = [len(read), len(written), len(journal), self._journal_size,
                           *read.values()]
        for k, raw in written.items():
            ttl = ttls.get(k)
            if raw is None:
                args.extend(("d", "", 0))
            else:
                args.extend(("s", raw, 0 if ttl is None else max(1, math.ceil(ttl * 1000))))
        if journal:
            keys.append(_JOURNAL)
            args.extend(journal)
        self.round_trips += 1
        try:
            reply = self._command("EVALSHA", self._sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # Redis restarted or SCRIPT FLUSH: load again
            self._sha = self._command("SCRIPT", "LOAD", _COMMIT).decode()
            reply = self._command("EVALSHA", self._sha, len(keys), *keys, *args)
        if reply[0] == 1:
            return {}
        pairs = reply[1:]
        return {k.decode(): (v or None) for k, v in zip(pairs[::2], pairs[1::2], strict=True)}

    # ---- plain reads, the journal ------------------------------------------------------

    @_bounded
    def journal(self, limit: int = 100) -> list[Doc]:
        limit = min(limit, self._journal_size)
        return [orjson.loads(x) for x in self._client.lrange(_JOURNAL, 0, limit - 1)]

    @_bounded
    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            batch = []
            for k in self._client.scan_iter(match=f"{_PREFIX}*", count=1000):
                batch.append(k)
                if len(batch) >= 500:
                    self._client.delete(*batch)
                    batch = []
            if batch:
                self._client.delete(*batch)

    def close(self) -> None:
        self._committer.close()
        with self._lock:
            self._conn.disconnect()
            self._client.connection_pool.release(self._conn)
        self._client.close()
