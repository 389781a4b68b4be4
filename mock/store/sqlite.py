"""SQLite store: survives restarts and is shared by worker processes on one host (WAL mode).

Transactions queued by the event loop run on one thread of the store's own, in batches, each
batch one SQLite transaction and one commit (`GroupCommitter`): the functions of a batch run in
order, each seeing the writes of those before it, and one that raises leaves no write behind.
Journal entries queued meanwhile land in the same commit.

A batch starts with a deferred `BEGIN` and a read of `PRAGMA data_version` (which fixes the
batch's snapshot and changes whenever another connection committed): a batch that only reads
never takes the write lock, and one that writes takes it at its first write, which SQLite (WAL
mode) grants only when no other connection wrote since the batch's snapshot; otherwise the batch
runs again under `BEGIN IMMEDIATE`, which takes the lock up front. Either way writers are
serialized and no read-modify-write is lost.

Documents read or written are kept in a cache in the process, valid while no other connection
committed: with one worker nearly every read is a dictionary lookup instead of a query (a
regenerate reads about 13 documents); another writer's commit (a second worker, another
process) changes the data version and empties the cache.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import orjson

from layers_kit.mock.store.base import (
    STORE_TIMEOUT,
    WALL,
    BufferedTx,
    Clock,
    Doc,
    StoreUnavailable,
    make_room,
)
from layers_kit.mock.store.committer import Batched, GroupCommitter, Item, Outcome

log = logging.getLogger("layers.mock")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, expires REAL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_expires ON docs(expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL);
"""
_UPSERT = ("INSERT INTO docs(kind,key,doc,expires) VALUES(?,?,?,?) ON CONFLICT(kind,key) "
           "DO UPDATE SET doc=excluded.doc, expires=excluded.expires")
_CACHE_SIZE = 10_000  # documents; past it the oldest are forgotten (base.make_room)
_SWEEP_EVERY = 1000  # batches between deletions of expired documents
# The WAL is copied into the database by a thread of its own (`_checkpoints`), not by the
# store's thread inside a COMMIT: SQLite's automatic checkpoint (every 1,000 pages) ran in the
# COMMIT that crossed the line, fsyncs included, and held every queued request meanwhile
# (measured under wrk, the server in process: COMMIT 257-264 us per regenerate, p99 13 ms;
# with the checkpoints on their own thread 121-144 us, p99 1.2-2.1 ms; regenerate +6 %).
# The writer still checkpoints by itself past this many pages: the WAL stays bounded (16 MiB
# of 4-KiB pages) if that thread falls behind.
_WRITER_CHECKPOINT_PAGES = 4000
_CHECKPOINT_DELAY = 0.05  # seconds a checkpoint waits after a commit, to take several at once

Row = tuple[str, float | None] | None  # (doc text, expires) or None: absent
_ABSENT: Row = None


class _NeedsWriteLock(Exception):
    """A deferred transaction could not take the write lock: run it again as IMMEDIATE."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class _SqliteTx(BufferedTx):
    """One function's transaction inside a batch: reads see the batch's earlier writes, then
    the cache, then the database (inside the batch's SQLite transaction)."""

    def __init__(self, store: SqliteStore, rows: dict[tuple[str, str], Row], now: float) -> None:
        super().__init__()
        self._store = store
        self._rows = rows
        self._now = now

    def _read(self, kind: str, key: str) -> Doc | None:
        k = (kind, key)
        row = self._rows[k] if k in self._rows else self._store._cached_row(k)
        if row is None or (row[1] is not None and row[1] <= self._now):
            return None
        return orjson.loads(row[0])


class SqliteStore(Batched):
    shared = True

    def __init__(self, url: str, *, journal_size: int, now: Clock = WALL,
                 timeout: float = STORE_TIMEOUT) -> None:
        self.url = url
        self.now = now
        self.path = Path(url.removeprefix("sqlite:///"))
        durable = str(self.path) != ":memory:"
        if durable:
            self.path = self.path if self.path.is_absolute() else Path.cwd() / self.path
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._journal_size = journal_size
        self._readers = threading.local()  # plain reads: a connection per thread
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # the writer connection, the cache and the counters
        # The writer waits for another process's write lock as long as a request waits for
        # the store (then the batch is StoreUnavailable, 503), not 30 s: its thread would
        # hold every queued request meanwhile.
        self._writer = self._connect(busy_ms=max(1, int(timeout * 1000)))
        self._writer.executescript(_SCHEMA)
        self._committed = threading.Event()  # wakes the checkpoint thread
        self._stopping = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if durable:
            self._writer.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
            self._checkpointer = threading.Thread(target=self._checkpoints,
                                                  name="store-sqlite-checkpoint", daemon=True)
            self._checkpointer.start()
        self._cache: dict[tuple[str, str], Row] = {}
        self._cache_version: int | None = None
        self._batches = 0
        self._journal_added = 0
        self._committer = GroupCommitter(self._run_batch, "store-sqlite", timeout=timeout)

    def _connect(self, busy_ms: int = 30000) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=busy_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL with NORMAL sync survives a crash of the process (not of the machine).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        self._conns.append(conn)
        return conn

    def _checkpoints(self) -> None:
        """Copy the WAL into the database after commits (PASSIVE: it never waits for a lock,
        nor makes anyone wait), on a plain connection of this thread's own: it needs none of
        the journal-mode setup `_connect` does (kept apart after a suite run in which the
        shared reader connection here coincided with a failure of many workers starting)."""
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=0")
            while not self._stopping.is_set():
                if not self._committed.wait(1.0):
                    continue
                self._stopping.wait(_CHECKPOINT_DELAY)
                self._committed.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy, or another process's lock: next time
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def _conn(self) -> sqlite3.Connection:
        """The connection transactions run on (used under `_lock` only)."""
        return self._writer

    def _reader(self) -> sqlite3.Connection:
        """A connection of the calling thread for plain reads; it never waits for a lock (a
        read on the event loop must not: a held lock froze every connection)."""
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect(busy_ms=0)
        return conn

    # ---- transactions -----------------------------------------------------------------

    def _run_batch(self, items: list[Item]) -> list[Outcome]:
        with self._lock:
            try:
                return self._batch(items, immediate=False)
            except _NeedsWriteLock:
                return self._batch(items, immediate=True)

    def _batch(self, items: list[Item], *, immediate: bool) -> list[Outcome]:
        """One SQLite transaction for the whole batch. Writes wait in memory until the end, so
        a batch that only reads commits without ever taking the write lock. One that writes
        takes the lock at its first statement; when another connection wrote since this one's
        snapshot (or holds the lock), SQLite refuses at once and the whole batch runs again
        under BEGIN IMMEDIATE, which waits for the lock."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            # The first read fixes the batch's snapshot, and says whether another connection
            # committed since the last batch (the data version ignores our own commits).
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._cache_version:
                self._cache.clear()
                self._cache_version = version
            now = self.now()
            rows: dict[tuple[str, str], Row] = {}
            journal: list[tuple[str]] = []
            outcomes: list[Outcome] = []
            for kind, payload in items:
                if kind == "journal":
                    journal.append((orjson.dumps(payload).decode(),))
                    outcomes.append((True, None))
                    continue
                tx = _SqliteTx(self, rows, now)
                try:
                    outcomes.append((True, payload(tx)))
                except sqlite3.Error:
                    raise  # the store failed, not the function: the batch as a whole
                except Exception as exc:  # this function's writes are dropped, not the batch's
                    outcomes.append((False, exc))
                    continue
                for k, entry in tx.writes.items():
                    rows[k] = None if entry is None else (
                        entry[0].decode(), None if entry[1] is None else now + entry[1])
            self._batches += 1
            sweep = self._batches % _SWEEP_EVERY == 0
            if rows or journal or sweep:
                try:
                    self._write(conn, rows, journal, now, sweep)
                except sqlite3.OperationalError as exc:
                    if immediate or not _busy(exc):
                        raise
                    conn.execute("ROLLBACK")
                    raise _NeedsWriteLock from exc
            conn.execute("COMMIT")
            if rows or journal:
                self._committed.set()
            if rows:
                make_room(self._cache, len(rows), _CACHE_SIZE)
                self._cache.update(rows)
            return outcomes
        except _NeedsWriteLock:
            raise
        except BaseException as exc:
            self._cache.clear()
            self._cache_version = None
            # A failed COMMIT may have ended the transaction already; a ROLLBACK then fails
            # too and used to mask the real error (a full disk, say) in the logs.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("ROLLBACK failed after %r", exc)
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                raise StoreUnavailable("sqlite: the database stayed locked") from exc
            raise

    def _cached_row(self, k: tuple[str, str]) -> Row:
        """A document's row through the cache (called inside a batch, under `_lock`)."""
        try:
            return self._cache[k]
        except KeyError:
            pass
        found = self._writer.execute("SELECT doc, expires FROM docs WHERE kind=? AND key=?",
                                     k).fetchone()
        row: Row = None if found is None else (found[0], found[1])
        make_room(self._cache, 1, _CACHE_SIZE)
        self._cache[k] = row
        return row

    def _write(self, conn: sqlite3.Connection, rows: dict[tuple[str, str], Row],
               journal: list[tuple[str]], now: float, sweep: bool) -> None:
        # A document written as it already is in the database (the cache holds what this
        # snapshot has) is not written again: a list's head and the deadline index, rewritten
        # unchanged, are two or three of a regenerate's twelve rows (measured in process).
        cache = self._cache
        deletes = [k for k, row in rows.items() if row is None and cache.get(k, 0) is not None]
        upserts = [(*k, *row) for k, row in rows.items()
                   if row is not None and cache.get(k) != row]
        if upserts:
            conn.executemany(_UPSERT, upserts)
        if deletes:
            conn.executemany("DELETE FROM docs WHERE kind=? AND key=?", deletes)
        if journal:
            conn.executemany("INSERT INTO journal(entry) VALUES(?)", journal)
            before = self._journal_added
            self._journal_added += len(journal)
            if before // 100 != self._journal_added // 100:  # trim the ring now and then
                conn.execute("DELETE FROM journal WHERE id <= (SELECT max(id) FROM journal) - ?",
                             (self._journal_size,))
        if sweep:
            conn.execute("DELETE FROM docs WHERE expires IS NOT NULL AND expires<=?", (now,))

    # ---- plain reads, the journal ------------------------------------------------------

    def journal(self, limit: int = 100) -> list[Doc]:
        limit = min(limit, self._journal_size)
        try:
            rows = self._reader().execute(
                "SELECT entry FROM journal ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                raise StoreUnavailable("sqlite: the database is locked") from exc
            raise
        return [orjson.loads(r[0]) for r in rows]

    def clear(self) -> None:
        with self._lock:
            conn = self._writer
            self._cache.clear()
            self._cache_version = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM docs")
                conn.execute("DELETE FROM journal")
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if _busy(exc):
                    raise StoreUnavailable("sqlite: the database stayed locked") from exc
                raise

    def close(self) -> None:
        self._committer.close()
        if self._checkpointer is not None:
            self._stopping.set()
            self._committed.set()
            self._checkpointer.join(timeout=5)
            self._checkpointer = None
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
            self._readers = threading.local()
