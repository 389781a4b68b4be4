"""Where an org's containers and assets live in the store: under keys of that org alone (D8, R12).

A client may name a container id itself (`generateContent` with `"id"`). Were containers keyed
by id alone, another org's id would answer 409 `CONFLICT` where a free id answers 202: anyone
could probe which ids exist in other organizations, and squat them. Keyed per org, another org's
id is simply absent from the caller's keyspace: the caller gets exactly what a free id gets (a
new container of its own), and the other org's document is never read nor written. The public
id is the same string in both orgs; each org only ever sees its own.

Assets are keyed per org for the same reason: an asset is found through a container, and two
orgs may each hold a container with the same public id.
"""

from __future__ import annotations

from typing import Any

from layers_kit.mock.store.base import Tx

CONTAINER, ASSET = "container", "asset"


def _key(org_id: str, public_id: str) -> str:
    return f"{org_id}/{public_id}"


def get_container(tx: Tx, org_id: str, cid: str) -> dict[str, Any] | None:
    return tx.get(CONTAINER, _key(org_id, cid))


def put_container(tx: Tx, c: dict[str, Any]) -> None:
    tx.put(CONTAINER, _key(c["orgId"], c["id"]), c)


def get_asset(tx: Tx, org_id: str, aid: str) -> dict[str, Any] | None:
    return tx.get(ASSET, _key(org_id, aid))


def put_asset(tx: Tx, org_id: str, asset: dict[str, Any], ttl: float | None = None) -> None:
    tx.put(ASSET, _key(org_id, asset["assetId"]), asset, ttl=ttl)


def delete_container(tx: Tx, org_id: str, cid: str) -> None:
    tx.delete(CONTAINER, _key(org_id, cid))


def delete_asset(tx: Tx, org_id: str, aid: str) -> None:
    tx.delete(ASSET, _key(org_id, aid))
