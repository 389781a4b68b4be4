"""Redis store: shared by processes on many hosts.

`atomic` is an optimistic transaction: every key read is WATCHed, the writes go in one
MULTI/EXEC, and when another client changed a watched key first the whole function runs again.
That holds for functions that raise too: their decision rests on their reads as well.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import TypeVar

import orjson
import redis

from mock.store.base import STORE_TIMEOUT, BufferedTx, Doc, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("layers.mock")
_PREFIX = "layers-mock:"
_MAX_RETRIES = 200


def _key(kind: str, key: str) -> str:
    return f"{_PREFIX}doc:{kind}:{key}"


class _RedisTx(BufferedTx):
    def __init__(self, pipe: redis.client.Pipeline) -> None:
        super().__init__()
        self._pipe = pipe

    def _read(self, kind: str, key: str) -> Doc | None:
        k = _key(kind, key)
        self._pipe.watch(k)  # a concurrent change to what we read makes EXEC fail: retry
        raw = self._pipe.get(k)
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


class RedisStore:
    shared = True

    def __init__(self, url: str, *, journal_size: int) -> None:
        self.url = url
        # Timeouts on every call: a paused Redis answered nothing, for any request, forever.
        self._client = redis.Redis.from_url(url, socket_timeout=STORE_TIMEOUT,
                                            socket_connect_timeout=STORE_TIMEOUT)
        self._client.ping()
        self._journal_size = journal_size
        self._warn_without_persistence()

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
            with self._client.pipeline(transaction=True) as pipe:
                tx = _RedisTx(pipe)
                try:
                    try:
                        result = fn(tx)
                    except Exception:
                        # `fn` gave up (an API error, say) on what it read. Those reads are
                        # only a consistent view if no watched key changed meanwhile: an empty
                        # transaction tells, and a stale view means running `fn` again.
                        pipe.multi()
                        pipe.execute()
                        raise
                    pipe.multi()
                    for (kind, key), entry in tx.writes.items():
                        k = _key(kind, key)
                        if entry is None:
                            pipe.delete(k)
                        elif entry[1] is None:
                            pipe.set(k, entry[0])
                        else:
                            pipe.set(k, entry[0], px=max(1, math.ceil(entry[1] * 1000)))
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise RuntimeError("redis transaction kept conflicting; giving up")

    @_bounded
    def journal_append(self, entry: Doc) -> None:
        k = f"{_PREFIX}journal"
        pipe = self._client.pipeline(transaction=True)
        pipe.lpush(k, orjson.dumps(entry))
        pipe.ltrim(k, 0, self._journal_size - 1)
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
        self._client.close()
