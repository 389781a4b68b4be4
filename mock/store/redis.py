"""Redis store: shared by processes on many hosts.

`atomic` is an optimistic transaction in as few round trips as the reads allow: each document
read is one GET, remembered as read; the commit is one Lua script that checks every document
read is still what was read and then applies all the writes, or changes nothing and says so, and
then the whole function runs again. A function that only read one document needs no commit; one
that read several, or raised on what it read, has its reads checked the same way (its decision
rests on them). So a transaction costs one round trip per document read plus one, where
WATCH/GET/MULTI/EXEC cost two per read plus two.

`round_trips` counts the commands sent, so a test can hold a regenerate to its budget.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import TypeVar

import orjson
import redis

from mock.store.base import STORE_TIMEOUT, BufferedTx, Doc, OffLoop, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("layers.mock")
_PREFIX = "layers-mock:"
_MAX_RETRIES = 200

# KEYS: the documents read, then the documents written. ARGV[1]: how many were read; then
# what each read returned ("" when absent); then per write: "d" (delete), or "s", the value and
# a TTL in ms (0: none). Returns 1 when applied, 0 when a read went stale.
_COMMIT = """
local reads = tonumber(ARGV[1])
for i = 1, reads do
  local v = redis.call('GET', KEYS[i])
  if (v or '') ~= ARGV[1 + i] then return 0 end
end
local a = reads + 2
for k = reads + 1, #KEYS do
  if ARGV[a] == 'd' then
    redis.call('DEL', KEYS[k]); a = a + 1
  else
    local ttl = tonumber(ARGV[a + 2])
    if ttl > 0 then redis.call('SET', KEYS[k], ARGV[a + 1], 'PX', ttl)
    else redis.call('SET', KEYS[k], ARGV[a + 1]) end
    a = a + 3
  end
end
return 1
"""


def _key(kind: str, key: str) -> str:
    return f"{_PREFIX}doc:{kind}:{key}"


class _Stale(Exception):
    """A document read changed before the commit: run the function again."""


class _RedisTx(BufferedTx):
    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self._store = store
        self.read: dict[str, bytes] = {}  # redis key -> raw value read (b"" when absent)

    def _read(self, kind: str, key: str) -> Doc | None:
        k = _key(kind, key)
        if k in self.read:
            raw: bytes | None = self.read[k] or None
        else:
            raw = self._store._get(k)
            self.read[k] = raw or b""
        return None if raw is None else orjson.loads(raw)


def _bounded(method: Callable[..., T]) -> Callable[..., T]:
    """A timeout or a lost connection becomes StoreUnavailable: a 503 with Retry-After."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (redis.TimeoutError, redis.ConnectionError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
    return call


class RedisStore(OffLoop):
    shared = True

    def __init__(self, url: str, *, journal_size: int) -> None:
        self.url = url
        # Timeouts on every call: a paused Redis answered nothing, for any request, forever.
        self._client = redis.Redis.from_url(url, socket_timeout=STORE_TIMEOUT,
                                            socket_connect_timeout=STORE_TIMEOUT)
        self._client.ping()
        self._commit = self._client.register_script(_COMMIT)
        self._journal_size = journal_size
        self.round_trips = 0
        self._warn_without_persistence()

    def _get(self, k: str) -> bytes | None:
        self.round_trips += 1
        return self._client.get(k)

    def _apply(self, tx: _RedisTx) -> bool:
        keys = list(tx.read)
        args: list[bytes | str | int] = [len(keys), *tx.read.values()]
        for (kind, key), entry in tx.writes.items():
            keys.append(_key(kind, key))
            if entry is None:
                args.append("d")
            else:
                ttl = 0 if entry[1] is None else max(1, math.ceil(entry[1] * 1000))
                args.extend(("s", entry[0], ttl))
        self.round_trips += 1
        return bool(self._commit(keys=keys, args=args))

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

    @_bounded
    def atomic(self, fn: Callable[[_RedisTx], T]) -> T:
        for _ in range(_MAX_RETRIES):
            tx = _RedisTx(self)
            try:
                result = fn(tx)
            except Exception:
                # `fn` gave up (an API error, say) on what it read: only a consistent view
                # may decide that, so check the reads (no writes) and run again if stale.
                if tx.read and not self._apply(_without_writes(tx)):
                    continue
                raise
            if not tx.writes and len(tx.read) <= 1:
                return result  # one GET is consistent by itself
            if self._apply(tx):
                return result
        raise RuntimeError("redis transaction kept conflicting; giving up")

    @_bounded
    def _peek(self, kind: str, key: str) -> Doc | None:
        raw = self._get(_key(kind, key))
        return None if raw is None else orjson.loads(raw)

    @_bounded
    def journal_append(self, entry: Doc) -> None:
        k = f"{_PREFIX}journal"
        pipe = self._client.pipeline(transaction=True)
        pipe.lpush(k, orjson.dumps(entry))
        pipe.ltrim(k, 0, self._journal_size - 1)
        self.round_trips += 1
        pipe.execute()

    @_bounded
    def journal(self, limit: int = 100) -> list[Doc]:
        limit = min(limit, self._journal_size)
        return [orjson.loads(x) for x in self._client.lrange(f"{_PREFIX}journal", 0, limit - 1)]

    @_bounded
    def clear(self) -> None:
        batch = []
        for k in self._client.scan_iter(match=f"{_PREFIX}*", count=1000):
            batch.append(k)
            if len(batch) >= 500:
                self._client.delete(*batch)
                batch = []
        if batch:
            self._client.delete(*batch)

    def close(self) -> None:
        self._close_threads()
        self._client.close()


def _without_writes(tx: _RedisTx) -> _RedisTx:
    check = _RedisTx(tx._store)
    check.read = tx.read
    return check
