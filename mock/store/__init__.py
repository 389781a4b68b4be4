"""One store interface (base.Store) with memory, SQLite and Redis behind it (D9)."""

from mock.store.base import Store, Tx, open_store

__all__ = ["Store", "Tx", "open_store"]
