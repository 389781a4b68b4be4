"""A first-in, first-out list in the store whose every operation costs the same however long
it is: pages of at most `PAGE` items, and a head document naming the first and the last page.

Appending reads and writes the head and the last page; taking the oldest reads the first page.
Used for what must be kept in order of arrival and bounded or walked from the oldest: the
deadline index of running jobs (jobs.py), the Idempotency-Keys of an API key (idempotency.py)
and the containers an org created through the API (operations.py). A single document listing
every item made each append rewrite all of them (job starts fell from 762 to 170 req/s with
8,700 jobs running).
"""

from __future__ import annotations

from typing import Any

from layers_kit.mock.store.base import Tx

PAGE = 32  # items per page at most


def _page_key(name: str, n: int) -> str:
    return f"{name}#{n}"


def head(tx: Tx, kind: str, name: str) -> dict[str, int] | None:
    return tx.get(kind, name)


def push(tx: Tx, kind: str, name: str, item: Any, ttl: float | None = None) -> dict[str, int]:
    """Append an item; returns the head. With `ttl` every document written expires after it
    (items that expire on their own: their list may expire with them)."""
    h = tx.get(kind, name) or {"first": 0, "last": 0}
    page_kind = kind + "-page"
    page = tx.get(page_kind, _page_key(name, h["last"])) or {"items": []}
    if len(page["items"]) >= PAGE:
        h["last"] += 1
        page = {"items": []}
    page["items"].append(item)
    tx.put(page_kind, _page_key(name, h["last"]), page, ttl=ttl)
    tx.put(kind, name, h, ttl=ttl)
    return h


def pages(h: dict[str, int] | None) -> int:
    return 0 if h is None else h["last"] - h["first"] + 1


def page(tx: Tx, kind: str, name: str, n: int) -> list[Any]:
    doc = tx.get(kind + "-page", _page_key(name, n))
    return doc["items"] if doc else []


def set_page(tx: Tx, kind: str, name: str, n: int, items: list[Any],
             ttl: float | None = None) -> None:
    tx.put(kind + "-page", _page_key(name, n), {"items": items}, ttl=ttl)


def drop_first(tx: Tx, kind: str, name: str, h: dict[str, int],
               ttl: float | None = None) -> list[Any]:
    """Remove the first page and return its items; the list is gone when it was the last."""
    items = page(tx, kind, name, h["first"])
    tx.delete(kind + "-page", _page_key(name, h["first"]))
    if h["first"] >= h["last"]:
        tx.delete(kind, name)
    else:
        h["first"] += 1
        tx.put(kind, name, h, ttl=ttl)
    return items
