"""Generated media (D3): what a finished generation writes, and superseding old assets (R3, R7)."""

from __future__ import annotations

import hashlib
from typing import Any

from layers_kit.mock.domain import ids, tenancy
from layers_kit.mock.store.base import Tx

CDN = "https://cdn.mock.layers.test/assets"


def _spread(asset_id: str, low: int, high: int) -> int:
    digest = int(hashlib.sha256(asset_id.encode()).hexdigest()[:8], 16)
    return low + digest % (high - low)


def create_for(tx: Tx, container: dict[str, Any], at_iso: str) -> list[str]:
    """Write a fresh set of assets for the container's format; returns their ids."""
    made = []
    if container["format"] == "slideshow_remix":
        specs = [("image", "image/jpeg", 1080, 1350, None, "jpg")] * 4
    else:
        specs = [("video", "video/mp4", 1080, 1920, True, "mp4")]
    for kind, mime, width, height, is_video, ext in specs:
        aid = ids.asset_id()
        tenancy.put_asset(tx, container["orgId"], {
            "assetId": aid, "containerId": container["id"], "kind": kind,
            "url": f"{CDN}/{aid}.{ext}", "mimeType": mime, "width": width, "height": height,
            "durationMs": _spread(aid, 12000, 45000) if is_video else None,
            "createdAt": at_iso, "supersededAt": None,
        })
        made.append(aid)
    return made


def supersede(tx: Tx, org_id: str, asset_ids: list[str], at_iso: str,
              retention: float | None = None) -> None:
    """R7: replaced assets stay readable, marked with the time they were replaced, until the
    retention period (storage lifecycle) ends."""
    for aid in asset_ids:
        asset = tenancy.get_asset(tx, org_id, aid)
        if asset is not None and asset["supersededAt"] is None:
            asset["supersededAt"] = at_iso
            tenancy.put_asset(tx, org_id, asset, ttl=retention)


def load(tx: Tx, org_id: str, asset_ids: list[str]) -> list[dict[str, Any]]:
    return [a for a in (tenancy.get_asset(tx, org_id, aid) for aid in asset_ids)
            if a is not None]
