"""SQLite store: survives restarts and is shared by worker processes on one host (WAL mode).

`atomic` starts with a deferred `BEGIN`: a transaction that only reads never takes the write
lock, and one that writes takes it at its first write, which SQLite (WAL mode) grants only when
no other connection wrote since the transaction's snapshot; otherwise the transaction runs again
under `BEGIN IMMEDIATE`, which takes the lock up front. Either way writers are serialized and
no read-modify-write is lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import orjson

from mock.store.base import WALL, BufferedTx, Clock, Doc, OffLoop, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("layers.mock")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, expires REAL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_expires ON docs(expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL);
"""


class _NeedsWriteLock(Exception):
    """A deferred transaction could not take the write lock: run it again as IMMEDIATE."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class _SqliteTx(BufferedTx):
    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        super().__init__()
        self._conn = conn
        self._now = now

    def _read(self, kind: str, key: str) -> Doc | None:
        row = self._conn.execute(
            "SELECT doc FROM docs WHERE kind=? AND key=? AND (expires IS NULL OR expires>?)",
            (kind, key, self._now),
        ).fetchone()
        return None if row is None else orjson.loads(row[0])


class SqliteStore(OffLoop):
    shared = True
    # One transaction thread: most transactions write (and take the write lock). Journal
    # writes take it too, so they queue on the same thread rather than meet the lock held by
    # another of our own threads and wait in SQLite's busy handler (which sleeps).
    _journal_on = "tx"
    # Plain reads (the fault check of every request) run on the event loop: a read in WAL mode
    # takes no lock a writer holds and costs ~10 us, where the hand-off to a thread and back
    # cost far more (the control API's journal reads already ran there).
    _peek_inline = True

    def __init__(self, url: str, *, journal_size: int, now: Clock = WALL) -> None:
        self.url = url
        self.now = now
        self.path = Path(url.removeprefix("sqlite:///"))
        if str(self.path) != ":memory:":
            self.path = self.path if self.path.is_absolute() else Path.cwd() / self.path
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._journal_size = journal_size
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._ops = 0
        conn = self._conn()
        conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL sync survives a crash of the process (not of the machine).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    def atomic(self, fn: Callable[[_SqliteTx], T]) -> T:
        conn = self._conn()
        try:
            return self._atomic(conn, fn, immediate=False)
        except _NeedsWriteLock:
            return self._atomic(conn, fn, immediate=True)

    def _atomic(self, conn: sqlite3.Connection, fn: Callable[[_SqliteTx], T], *,
                immediate: bool) -> T:
        """One transaction. Writes wait in the transaction until the end, so it starts with a
        plain (deferred) BEGIN: one that only read commits without ever taking the write
        lock. One that wrote takes the lock at its first statement; when another connection
        wrote since this one's snapshot (or holds the lock), SQLite refuses at once and the
        whole transaction runs again under BEGIN IMMEDIATE, which waits for the lock."""
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            now = self.now()
            tx = _SqliteTx(conn, now)
            result = fn(tx)
            self._ops += 1
            sweep = self._ops % 1000 == 0
            if tx.writes or sweep:
                try:
                    self._write(conn, tx, now, sweep)
                except sqlite3.OperationalError as exc:
                    if immediate or not _busy(exc):
                        raise
                    conn.execute("ROLLBACK")
                    raise _NeedsWriteLock from exc
            conn.execute("COMMIT")
            return result
        except _NeedsWriteLock:
            raise
        except BaseException as exc:
            # A failed COMMIT may have ended the transaction already; a ROLLBACK then fails
            # too and used to mask the real error (a full disk, say) in the logs.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("ROLLBACK failed after %r", exc)
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StoreUnavailable("sqlite: the database stayed locked") from exc
            raise

    @staticmethod
    def _write(conn: sqlite3.Connection, tx: _SqliteTx, now: float, sweep: bool) -> None:
        for (kind, key), entry in tx.writes.items():
            if entry is None:
                conn.execute("DELETE FROM docs WHERE kind=? AND key=?", (kind, key))
            else:
                conn.execute(
                    "INSERT INTO docs(kind,key,doc,expires) VALUES(?,?,?,?) "
                    "ON CONFLICT(kind,key) DO UPDATE SET doc=excluded.doc, "
                    "expires=excluded.expires",
                    (kind, key, entry[0].decode(),
                     None if entry[1] is None else now + entry[1]),
                )
        if sweep:
            conn.execute("DELETE FROM docs WHERE expires IS NOT NULL AND expires<=?", (now,))

    def _peek(self, kind: str, key: str) -> Doc | None:
        return _SqliteTx(self._conn(), self.now())._read(kind, key)

    def journal_append(self, entry: Doc) -> None:
        conn = self._conn()
        with conn:
            cur = conn.execute("INSERT INTO journal(entry) VALUES(?)",
                               (orjson.dumps(entry).decode(),))
            if cur.lastrowid and cur.lastrowid % 100 == 0:
                conn.execute("DELETE FROM journal WHERE id <= ?",
                             (cur.lastrowid - self._journal_size,))

    def journal(self, limit: int = 100) -> list[Doc]:
        limit = min(limit, self._journal_size)
        rows = self._conn().execute(
            "SELECT entry FROM journal ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [orjson.loads(r[0]) for r in rows]

    def clear(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM docs")
        conn.execute("DELETE FROM journal")
        conn.execute("COMMIT")

    def close(self) -> None:
        self._close_threads()
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        self._local = threading.local()
