"""Credits (D9): reserved when work starts, kept on completion, released on failure or cancel."""

from __future__ import annotations

from layers_kit.mock.domain.errors import BillingExhausted
from layers_kit.mock.store.base import Tx

REGENERATE_COST = 120
REGENERATE_PRESERVE_COST = 10
GENERATE_COST_BY_FORMAT = {"video_remix": 120, "slideshow_remix": 50, "ugc_remix": 120, "auto": 120}


def regenerate_cost(preserve_assets: bool) -> int:
    return REGENERATE_PRESERVE_COST if preserve_assets else REGENERATE_COST


def generate_cost(fmt: str, variants: int) -> int:
    return GENERATE_COST_BY_FORMAT[fmt] * variants


def reserve(tx: Tx, org_id: str, cost: int) -> None:
    """R12: BILLING_EXHAUSTED when the available credits are below the cost."""
    org = tx.get("org", org_id)
    assert org is not None, org_id
    if org["available"] < cost:
        raise BillingExhausted(cost, org["available"])
    org["available"] -= cost
    org["reserved"] += cost
    tx.put("org", org_id, org)


def settle(tx: Tx, org_id: str, cost: int) -> None:
    """The work completed: the reserved credits are spent."""
    org = tx.get("org", org_id)
    org["reserved"] -= cost
    org["spent"] = org.get("spent", 0) + cost
    tx.put("org", org_id, org)


def release(tx: Tx, org_id: str, cost: int) -> None:
    """R11: the work failed or was canceled: the reserved credits are available again."""
    org = tx.get("org", org_id)
    org["reserved"] -= cost
    org["available"] += cost
    tx.put("org", org_id, org)
