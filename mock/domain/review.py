"""The project's review policy and whether a completed generation needs approval (R8)."""

from __future__ import annotations

from typing import Any

from mock.store.base import Tx


def needs_review(tx: Tx, project: dict[str, Any]) -> bool:
    """R8: review_all always; review_first_n while its count is not used up (and uses one)."""
    policy = project["policy"]
    if policy["policy"] == "review_all":
        return True
    if policy["policy"] == "review_first_n" and policy.get("usedN", 0) < policy["firstN"]:
        policy["usedN"] = policy.get("usedN", 0) + 1
        tx.put("project", project["id"], project)
        return True
    return False


def view(tx: Tx, project: dict[str, Any]) -> dict[str, Any]:
    policy = project["policy"]
    pending = 0
    for cid in project["containerIds"]:
        c = tx.get("container", cid)
        if c is not None and c["approvalStatus"] == "pending":
            pending += 1
    out = {"projectId": project["id"], "policy": policy["policy"], "pendingCount": pending,
           "updatedAt": policy["updatedAt"]}
    if policy["policy"] == "review_first_n":
        out["firstN"] = policy["firstN"]
    return out


def update(tx: Tx, project: dict[str, Any], body: dict[str, Any], now_iso: str) -> None:
    """Setting a policy starts its count afresh."""
    project["policy"] = {"policy": body["policy"], "updatedAt": now_iso, "usedN": 0}
    if body["policy"] == "review_first_n":
        project["policy"]["firstN"] = body["firstN"]
    tx.put("project", project["id"], project)
