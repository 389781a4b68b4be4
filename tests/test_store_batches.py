"""The shared stores' group commit and document cache (mock/store/sqlite.py, redis.py),
which keep workers sharing a store fast (bench/README.md).

Transactions queued from the event loop run in batches (one SQLite transaction, or one Redis
commit script, each); these tests pin what callers rely on: serial order inside a batch, a
failing function leaving no write, journal entries in the same commit, and a cache that never
serves a document another process has changed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from layers_kit.mock.store.base import open_store


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    server = request.getfixturevalue("redis_server")
    server.flush(6)
    return server.db_url(6)


def test_a_batch_runs_in_order_and_a_failing_function_leaves_no_write(url):
    store = open_store(url)
    try:
        def first(tx):
            tx.put("doc", "a", {"n": 1})
            return "first"

        def failing(tx):
            tx.put("doc", "b", {"n": 99})
            raise ValueError("refused")

        def third(tx):
            a = tx.get("doc", "a")  # the earlier function's write, same batch
            tx.put("doc", "c", {"n": a["n"] + 1})
            return a

        outcomes = store._run_batch([("tx", first), ("tx", failing), ("journal", {"x": 1}),
                                     ("tx", third)])
        assert outcomes[0] == (True, "first")
        assert outcomes[1][0] is False and isinstance(outcomes[1][1], ValueError)
        assert outcomes[2] == (True, None)
        assert outcomes[3] == (True, {"n": 1})
        assert store.atomic(lambda tx: tx.get("doc", "b")) is None
        assert store.atomic(lambda tx: tx.get("doc", "c")) == {"n": 2}
        assert store.journal(5) == [{"x": 1}]
    finally:
        store.clear()
        store.close()


def test_concurrent_transactions_and_journal_entries_from_the_loop_all_land(url):
    store = open_store(url, journal_size=500)

    async def main() -> list:
        store.atomic(lambda tx: tx.put("doc", "n", {"n": 0}))

        def increment(tx):
            n = tx.get("doc", "n")["n"]
            tx.put("doc", "n", {"n": n + 1})
            return n

        seen = await asyncio.gather(*(store.transact(increment) for _ in range(200)),
                                    *(store.record({"i": i}) for i in range(100)))
        return seen[:200]

    try:
        seen = asyncio.run(main())
        assert sorted(seen) == list(range(200))  # serial: no increment lost or doubled
        assert store.atomic(lambda tx: tx.get("doc", "n")) == {"n": 200}
        assert sorted(e["i"] for e in store.journal(500)) == list(range(100))
    finally:
        store.clear()
        store.close()


def test_a_cached_document_another_process_changed_is_read_again(url):
    store, other = open_store(url), open_store(url)
    try:
        store.atomic(lambda tx: tx.put("doc", "a", {"n": 1}))
        assert store.atomic(lambda tx: tx.get("doc", "a")) == {"n": 1}  # cached now
        other.atomic(lambda tx: tx.put("doc", "a", {"n": 2}))

        def read_and_copy(tx):
            n = tx.get("doc", "a")["n"]
            tx.put("doc", "copy", {"n": n})
            return n

        assert store.atomic(read_and_copy) == 2
        assert other.atomic(lambda tx: tx.get("doc", "copy")) == {"n": 2}
        other.atomic(lambda tx: tx.delete("doc", "a"))
        assert store.atomic(lambda tx: tx.get("doc", "a")) is None
    finally:
        store.clear()
        store.close()
        other.close()


def test_redis_reads_from_its_cache_and_checks_them_in_the_commit(redis_server):
    """A warm transaction sends one command, the commit script, whatever it read."""
    redis_server.flush(6)
    store = open_store(redis_server.db_url(6))
    try:
        store.atomic(lambda tx: [tx.put("doc", str(i), {"n": i}) for i in range(5)])
        before = store.round_trips

        def total(tx):
            s = sum(tx.get("doc", str(i))["n"] for i in range(5))
            tx.put("doc", "total", {"n": s})
            return s

        assert store.atomic(total) == 10
        assert store.round_trips - before == 1
    finally:
        store.clear()
        store.close()


def test_sqlite_cache_serves_reads_without_a_query_until_another_connection_commits(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    store, other = open_store(url), open_store(url)
    statements: list[str] = []
    try:
        store.atomic(lambda tx: tx.put("doc", "a", {"n": 1}))
        store._conn().set_trace_callback(statements.append)
        assert store.atomic(lambda tx: tx.get("doc", "a")) == {"n": 1}
        assert not [s for s in statements if "FROM docs" in s]  # served from the cache

        other.atomic(lambda tx: tx.put("doc", "a", {"n": 2}))  # another process, say
        assert store.atomic(lambda tx: tx.get("doc", "a")) == {"n": 2}
        assert [s for s in statements if "FROM docs" in s]  # read again from the file
    finally:
        store.close()
        other.close()


def test_sqlite_failed_batch_empties_the_cache(tmp_path):
    """A batch whose commit fails must not leave its writes in the cache."""
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        store.atomic(lambda tx: tx.put("doc", "a", {"n": 1}))

        def write_then_lose_the_transaction(tx):
            tx.put("doc", "a", {"n": 2})
            store._conn().execute("ROLLBACK")

        with pytest.raises(sqlite3.OperationalError, match="cannot commit"):
            store.atomic(write_then_lose_the_transaction)
        assert store._cache == {}
        on_file = store._reader().execute(
            "SELECT doc FROM docs WHERE kind='doc' AND key='a'").fetchone()[0]
        assert store.atomic(lambda tx: tx.get("doc", "a")) == json.loads(on_file)
    finally:
        store.close()
