"""Redis store: shared by processes on many hosts.

`atomic` is an optimistic transaction: every key read is WATCHed, the writes go in one
MULTI/EXEC, and when another client changed a watched key first the whole function runs again.
That holds for functions that raise too: their decision rests on their reads as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import orjson
import redis

from mock.store.base import BufferedTx, Doc

T = TypeVar("T")
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


class RedisStore:
    shared = True

    def __init__(self, url: str, *, journal_size: int) -> None:
        self.url = url
        self._client = redis.Redis.from_url(url)
        self._client.ping()
        self._journal_size = journal_size

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

    def journal_append(self, entry: Doc) -> None:
        k = f"{_PREFIX}journal"
        pipe = self._client.pipeline(transaction=True)
        pipe.lpush(k, orjson.dumps(entry))
        pipe.ltrim(k, 0, self._journal_size - 1)
        pipe.execute()

    def journal(self, limit: int = 100) -> list[Doc]:
        limit = min(limit, self._journal_size)
        return [orjson.loads(x) for x in self._client.lrange(f"{_PREFIX}journal", 0, limit - 1)]

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
