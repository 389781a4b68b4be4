"""The store contract, tested once and run against memory, SQLite and a real Redis (D9)."""

from __future__ import annotations

import threading
import time

import pytest

from layers_kit.mock.domain import idempotency
from layers_kit.mock.domain.errors import IdempotencyConflict, IdempotencyInProgress
from layers_kit.mock.store.base import open_store

TTL = 3600.0


class FakeClock:
    """The stores' expiry clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path, clock):
    if request.param == "memory":
        s = open_store("memory", journal_size=5, now=clock)
    elif request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/state.db", journal_size=5, now=clock)
    else:
        server = request.getfixturevalue("redis_server")
        server.flush(3)
        s = open_store(server.db_url(3), journal_size=5)
    yield s
    s.clear()
    s.close()


def let_expire(store, clock: FakeClock, seconds: float) -> None:
    """Move the expiry clock; Redis expires on its own clock, so only there is time waited."""
    if store.url.startswith("redis"):
        time.sleep(seconds)
    else:
        clock.t += seconds


def in_threads(fn, n: int) -> None:
    """Run `fn` in `n` threads at once and wait for all of them."""
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_put_get_delete_roundtrip(store):
    store.atomic(lambda tx: tx.put("thing", "a", {"n": 1, "list": [1, 2], "none": None}))
    assert store.atomic(lambda tx: tx.get("thing", "a")) == {"n": 1, "list": [1, 2],
                                                            "none": None}
    store.atomic(lambda tx: tx.delete("thing", "a"))
    assert store.atomic(lambda tx: tx.get("thing", "a")) is None


def test_documents_are_copies(store):
    doc = {"n": 1}
    store.atomic(lambda tx: tx.put("thing", "a", doc))
    doc["n"] = 2
    got = store.atomic(lambda tx: tx.get("thing", "a"))
    got["n"] = 3
    assert store.atomic(lambda tx: tx.get("thing", "a")) == {"n": 1}


def test_reads_see_own_writes_and_failures_write_nothing(store):
    def fn(tx):
        tx.put("thing", "a", {"n": 1})
        assert tx.get("thing", "a") == {"n": 1}
        tx.put("thing", "b", {"n": 2})
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        store.atomic(fn)
    assert store.atomic(lambda tx: (tx.get("thing", "a"), tx.get("thing", "b"))) == (None, None)


def test_ttl_expires_documents(store, clock):
    store.atomic(lambda tx: tx.put("thing", "short", {"n": 1}, ttl=0.1))
    store.atomic(lambda tx: tx.put("thing", "long", {"n": 2}, ttl=60))
    assert store.atomic(lambda tx: tx.get("thing", "short")) == {"n": 1}
    let_expire(store, clock, 0.15)
    assert store.atomic(lambda tx: tx.get("thing", "short")) is None
    assert store.atomic(lambda tx: tx.get("thing", "long")) == {"n": 2}


def test_concurrent_increments_lose_no_update(store):
    """50 threads x 10 read-modify-writes: the count is exact (atomicity, D9)."""
    store.atomic(lambda tx: tx.put("counter", "c", {"n": 0}))

    def bump(tx):
        doc = tx.get("counter", "c")
        doc["n"] += 1
        tx.put("counter", "c", doc)

    def worker():
        for _ in range(10):
            store.atomic(bump)

    in_threads(worker, 50)
    assert store.atomic(lambda tx: tx.get("counter", "c")) == {"n": 500}


def test_journal_is_a_bounded_ring_newest_first(store):
    for i in range(250):
        store.journal_append({"i": i})
    entries = store.journal(1000)
    assert [e["i"] for e in entries][:5] == [249, 248, 247, 246, 245]
    assert len(store.journal(3)) == 3
    assert len(entries) <= 5 + 100  # ring of 5 (sqlite trims in batches of 100)


def test_clear_removes_everything(store):
    store.atomic(lambda tx: tx.put("thing", "a", {"n": 1}))
    store.journal_append({"i": 1})
    store.clear()
    assert store.atomic(lambda tx: tx.get("thing", "a")) is None
    assert store.journal(10) == []


def test_idempotency_claim_is_exclusive_under_concurrency(store):
    """D6: of 30 concurrent claims of one key exactly one wins; the rest see it in progress."""
    outcomes: list[str] = []
    lock = threading.Lock()

    def claim():
        try:
            result = idempotency.begin(store, "key_a", "k1", "fp", TTL)
            outcome = "won" if result is None else "replay"
        except IdempotencyInProgress:
            outcome = "in_progress"
        with lock:
            outcomes.append(outcome)

    in_threads(claim, 30)
    assert outcomes.count("won") == 1
    assert outcomes.count("in_progress") == 29


def test_idempotency_record_replay_conflict_release(store):
    assert idempotency.begin(store, "key_a", "k", "fp1", TTL) is None
    stored = idempotency.Stored(202, {"Location": "/v1/jobs/x"}, '{"a":1}')
    store.atomic(lambda tx: idempotency.record(tx, "key_a", "k", "fp1", stored, TTL))
    assert idempotency.begin(store, "key_a", "k", "fp1", TTL) == stored
    with pytest.raises(IdempotencyConflict):
        idempotency.begin(store, "key_a", "k", "fp2", TTL)
    assert idempotency.begin(store, "key_b", "k", "fp2", TTL) is None  # scoped to the API key
    idempotency.release(store, "key_b", "k")
    assert idempotency.begin(store, "key_b", "k", "fp3", TTL) is None  # released: free again


def test_idempotency_records_expire(store, clock):
    assert idempotency.begin(store, "key_a", "k", "fp", ttl=0.1) is None
    stored = idempotency.Stored(200, {}, "{}")
    store.atomic(lambda tx: idempotency.record(tx, "key_a", "k", "fp", stored, ttl=0.1))
    with pytest.raises(IdempotencyConflict):
        idempotency.begin(store, "key_a", "k", "other", ttl=0.1)
    let_expire(store, clock, 0.15)
    assert idempotency.begin(store, "key_a", "k", "other", ttl=0.1) is None


def test_sqlite_read_only_transaction_takes_no_write_lock(tmp_path):
    """A transaction that only reads (a getJob with nothing to settle) runs while another
    process holds the write lock; under BEGIN IMMEDIATE it waited for it."""
    url = f"sqlite:///{tmp_path}/state.db"
    store, holder = open_store(url), open_store(url)
    try:
        store.atomic(lambda tx: tx.put("doc", "a", {"n": 1}))
        store._conn().execute("PRAGMA busy_timeout=200")  # a regression fails fast
        lock = holder._conn()
        lock.execute("BEGIN IMMEDIATE")
        try:
            assert store.atomic(lambda tx: tx.get("doc", "a")) == {"n": 1}
        finally:
            lock.execute("ROLLBACK")
    finally:
        store.close()
        holder.close()


def test_sqlite_write_after_a_stale_read_runs_again_and_loses_nothing(tmp_path):
    """Another process commits between this transaction's read and its write: the write lock
    is refused (stale snapshot) and the transaction runs again, reading the new value."""
    url = f"sqlite:///{tmp_path}/state.db"
    store, other = open_store(url), open_store(url)
    try:
        store.atomic(lambda tx: tx.put("doc", "n", {"n": 0}))
        other._conn().execute("PRAGMA busy_timeout=200")
        runs = []

        def increment(tx):
            n = tx.get("doc", "n")["n"]
            if not runs:  # first run only: the other process writes after our read
                other.atomic(lambda t: t.put("doc", "n", {"n": t.get("doc", "n")["n"] + 1}))
            runs.append(n)
            tx.put("doc", "n", {"n": n + 1})

        store.atomic(increment)
        assert runs == [0, 1]
        assert store.atomic(lambda tx: tx.get("doc", "n")) == {"n": 2}
    finally:
        store.close()
        other.close()


def test_sqlite_survives_reopening(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    s = open_store(url, journal_size=10)
    s.atomic(lambda tx: tx.put("thing", "a", {"n": 1}))
    s.close()
    s2 = open_store(url, journal_size=10)
    assert s2.atomic(lambda tx: tx.get("thing", "a")) == {"n": 1}
    s2.close()


def test_unknown_store_url_is_refused():
    with pytest.raises(ValueError, match="unknown store"):
        open_store("postgres://x")


def test_redis_retries_a_function_that_failed_on_a_stale_read(redis_server):
    """A decision taken on reads that another client changed meanwhile is taken again, even
    when the decision was to fail (found under load: a stale 409 CONFLICT across workers)."""
    from layers_kit.mock.domain.errors import Conflict

    redis_server.flush(4)
    store, other = open_store(redis_server.db_url(4)), open_store(redis_server.db_url(4))
    try:
        store.atomic(lambda tx: tx.put("thing", "a", {"busy": True}))
        seen: list[bool] = []

        def decide(tx):
            busy = tx.get("thing", "a")["busy"]
            seen.append(busy)
            if len(seen) == 1:  # a concurrent writer frees it after our read
                other.atomic(lambda t: t.put("thing", "a", {"busy": False}))
            if busy:
                raise Conflict("busy")
            return "started"

        assert store.atomic(decide) == "started"
        assert seen == [True, False]
    finally:
        store.clear()
        store.close()
        other.close()


def test_transactions_are_awaitable_off_the_loop(store):
    """The web layer awaits `transact`; SQLite and Redis run it on their own threads."""
    import asyncio

    async def main():
        await store.transact(lambda tx: tx.put("thing", "a", {"n": 1}))
        got = await store.transact(lambda tx: tx.get("thing", "a"))
        await store.record({"i": 7})
        return got, await store.peek("thing", "a"), threading.current_thread()

    got, peeked, loop_thread = asyncio.run(main())
    assert got == peeked == {"n": 1}
    assert store.journal(1) == [{"i": 7}]
    if store.url != "memory":
        ran_on: list[threading.Thread] = []
        asyncio.run(store.transact(lambda tx: ran_on.append(threading.current_thread())))
        assert ran_on[0] is not loop_thread


def test_redis_regenerate_stays_within_its_round_trip_budget(redis_server):
    """A regenerate with an Idempotency-Key, through the whole web stack, over Redis: 8 round
    trips today (fault check; the documents read for the first time: the key, the API key's
    list of keys, the org's deadline index and its queue, the container, the org; one commit:
    the key's lookup, the operation and its record are one transaction; journal; documents
    already cached cost nothing), where WATCH/MULTI transactions took about 19; a getJob 3
    (fault check, the job, journal). The bounded lists (idempotency keys, deadline queues) are
    paged: a few more documents, each of a bounded size, where one document grew without end."""
    from starlette.testclient import TestClient

    from layers_kit.mock.config import Config
    from layers_kit.mock.web.app import create_app
    from tests.support import ids

    redis_server.flush(5)
    app = create_app(Config(store=redis_server.db_url(5), reset_on_start=True))
    store = app.service.store
    try:
        with TestClient(app, headers={"X-Api-Key": ids.FULL}) as c:
            c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}")  # warm: connections, script load
            before = store.round_trips
            r = c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate",
                       headers={"Idempotency-Key": "budget"}, json={"brief": {"cta": "Go"}})
            assert r.status_code == 202, r.text
            regenerate = store.round_trips - before
            before = store.round_trips
            assert c.get(r.headers["location"]).status_code == 200
            get_job = store.round_trips - before
    finally:
        store.clear()
        store.close()
    print(f"redis round trips: regenerate {regenerate}, getJob {get_job}")
    assert regenerate <= 8, regenerate
    assert get_job <= 3, get_job


def test_memory_store_forgets_expired_documents_without_a_full_sweep(clock):
    """Bounded memory with no pause: expired documents leave as later transactions run."""
    store = open_store("memory", now=clock)
    for i in range(100):
        store.atomic(lambda tx, i=i: tx.put("thing", str(i), {"n": i}, ttl=10))
    store.atomic(lambda tx: tx.put("thing", "kept", {"n": 0}))
    store.atomic(lambda tx: tx.put("thing", "0", {"n": "rewritten"}, ttl=100))
    clock.t += 11
    for _ in range(3):
        store.atomic(lambda tx: tx.get("thing", "kept"))
    assert set(store._data) == {("thing", "kept"), ("thing", "0")}


def test_a_redis_batch_that_keeps_meeting_other_writes_is_split_then_answers_503(
        redis_server, monkeypatch):
    """Under two workers' load a large batch met the other worker's commit on every attempt
    and its requests got 500s. Now after a few attempts its items are committed one at a
    time; one that still conflicts every time is a 503 with Retry-After (StoreUnavailable),
    and writes nothing."""
    from layers_kit.mock.store import redis as redis_store
    from layers_kit.mock.store.base import StoreUnavailable

    redis_server.flush(3)
    s = open_store(redis_server.db_url(3), journal_size=5)
    real_apply = s._apply
    applied: list[int] = []

    def busy(read, written, ttls, journal):  # another worker commits before every batch
        applied.append(len(written))
        if len(written) > 1:
            return {next(iter(written)): None}
        return real_apply(read, written, ttls, journal)

    def put(name: str):
        def fn(tx):
            tx.put("doc", name, {"name": name})
            return name
        return fn

    try:
        monkeypatch.setattr(s, "_apply", busy)
        outcomes = s._run_batch([("tx", put("a")), ("tx", put("b")), ("journal", {"n": 1})])
        assert outcomes == [(True, "a"), (True, "b"), (True, None)]
        assert applied[:redis_store._SPLIT_AFTER] == [2] * redis_store._SPLIT_AFTER
        assert s.atomic(lambda tx: (tx.get("doc", "a"), tx.get("doc", "b"))) == (
            {"name": "a"}, {"name": "b"})
        assert s.journal(10)[0] == {"n": 1}

        monkeypatch.setattr(s, "_apply", lambda *a: {"x": None})  # conflicts every time
        with pytest.raises(StoreUnavailable) as raised:
            s._run_batch([("tx", put("c"))])
        assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "1"}
        monkeypatch.setattr(s, "_apply", real_apply)
        assert s.atomic(lambda tx: tx.get("doc", "c")) is None  # nothing written
    finally:
        s.clear()
        s.close()


def test_a_split_redis_batch_fails_only_the_item_that_keeps_conflicting(redis_server,
                                                                        monkeypatch):
    from layers_kit.mock.store.base import StoreUnavailable

    redis_server.flush(3)
    s = open_store(redis_server.db_url(3), journal_size=5)
    real_apply = s._apply

    def busy(read, written, ttls, journal):  # batches of two, and "b", always meet a change
        if len(written) > 1 or any(k.endswith("b") for k in written):
            return {next(iter(written)): None}
        return real_apply(read, written, ttls, journal)

    def put(name: str):
        def fn(tx):
            tx.put("doc", name, {"name": name})
            return name
        return fn

    try:
        monkeypatch.setattr(s, "_apply", busy)
        (ok_a, a), (ok_b, b), (ok_c, c) = s._run_batch(
            [("tx", put("a")), ("tx", put("b")), ("tx", put("c"))])
        assert (ok_a, a, ok_c, c) == (True, "a", True, "c")
        assert not ok_b and isinstance(b, StoreUnavailable) and b.status == 503
        monkeypatch.setattr(s, "_apply", real_apply)
        assert s.atomic(lambda tx: [tx.get("doc", n) for n in "abc"]) == [
            {"name": "a"}, None, {"name": "c"}]
    finally:
        s.clear()
        s.close()
