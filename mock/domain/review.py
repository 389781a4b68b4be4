"""The project's review policy and whether a completed generation needs approval (R8).

`pendingCount` is a counter kept beside the project (kind `pending`), moved by `set_approval`
whenever a container enters or leaves `pending`, so reading the policy costs the same with 10
containers or 100,000: nothing here lists a project's containers.
"""

from __future__ import annotations

from typing import Any

from layers_kit.mock.store.base import Tx

PENDING = "pending"


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


def set_approval(tx: Tx, c: dict[str, Any], status: str) -> None:
    """Change a container's approvalStatus (the caller writes the container) and keep the
    project's pending counter in step."""
    before = c.get("approvalStatus") == "pending"
    c["approvalStatus"] = status
    after = status == "pending"
    if before != after:
        doc = tx.get(PENDING, c["projectId"]) or {"count": 0}
        doc["count"] = max(0, doc["count"] + (1 if after else -1))
        tx.put(PENDING, c["projectId"], doc)


def pending_count(tx: Tx, project_id: str) -> int:
    doc = tx.get(PENDING, project_id)
    return doc["count"] if doc else 0


def view(tx: Tx, project: dict[str, Any]) -> dict[str, Any]:
    policy = project["policy"]
    out = {"projectId": project["id"], "policy": policy["policy"],
           "pendingCount": pending_count(tx, project["id"]), "updatedAt": policy["updatedAt"]}
    if policy["policy"] == "review_first_n":
        out["firstN"] = policy["firstN"]
    return out


def update(tx: Tx, project: dict[str, Any], body: dict[str, Any], now_iso: str) -> None:
    """Setting a policy starts its count afresh."""
    project["policy"] = {"policy": body["policy"], "updatedAt": now_iso, "usedN": 0}
    if body["policy"] == "review_first_n":
        project["policy"]["firstN"] = body["firstN"]
    tx.put("project", project["id"], project)



