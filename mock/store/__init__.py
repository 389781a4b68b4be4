"""One store interface (base.Store) with memory, SQLite and Redis behind it (D9)."""

from layers_kit.mock.store.base import Store, Tx, open_store

__all__ = ["Store", "Tx", "open_store"]
