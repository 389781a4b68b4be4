"""What the end of a job does to its containers and credits (R2-R9, R11).

Called only from `jobs.advance` and `jobs.cancel`, inside the transaction that ends the job.
"""

from __future__ import annotations

from typing import Any

from layers_kit.mock.domain import assets, billing, captions, review, tenancy
from layers_kit.mock.store.base import Tx

CAPTION_HISTORY = 20


def on_completed(tx: Tx, job: dict[str, Any], at: str) -> dict[str, Any]:
    """Swap in the new content (D7: the swap happens at completion); returns the job's result."""
    pending = job["pending"]
    project = tx.get("project", job["projectId"])
    new_assets: list[dict[str, Any]] = []
    org = job["orgId"]
    for cid in job["containerIds"]:
        c = tenancy.get_container(tx, org, cid)
        if job["kind"] == "content_regenerate":
            # R5: brief fields given replace, the others stay; valuePropositions as a whole.
            c["brief"] = {**c["brief"], **(pending.get("brief") or {})}
            if pending.get("references") is not None:
                c["references"] = {"sourcePostIds": [], "assetIds": [],
                                   **pending["references"]}
        if not pending.get("preserveAssets"):
            # R3 + R7: the new set replaces the old one, which stays readable as superseded.
            assets.supersede(tx, org, c["assetIds"], at, job.get("retention"))
            c["assetIds"] = assets.create_for(tx, c, at)
        # R6: with preserveAssets the asset ids stay as they are.
        c["generation"] = c.get("generation", 0) + 1
        c["caption"] = captions.write(c["brief"], c["captions"], c["generation"])  # R4
        # Earlier captions, newest last; bounded, since the take number already keeps a new
        # caption unlike any older one.
        c["captions"] = [*c["captions"], c["caption"]][-CAPTION_HISTORY:]
        if review.needs_review(tx, project):
            review.set_approval(tx, c, "pending")  # R8, even when it was approved
            project = tx.get("project", job["projectId"])
        elif job["kind"] == "content_generate":
            review.set_approval(tx, c, "not_required")
        # R9: scheduledPostIds and the posts themselves are not touched.
        c["status"] = "completed"
        c["completedAt"] = at
        c["updatedAt"] = at
        c["currentJobId"] = None
        c["lastError"] = None
        tenancy.put_container(tx, c)
        new_assets.extend(assets.load(tx, org, c["assetIds"]))
    billing.settle(tx, job["orgId"], job["cost"])
    result: dict[str, Any] = {"containerId": job["containerIds"][0], "assets": new_assets}
    if job["kind"] == "content_generate":
        result["containerIds"] = list(job["containerIds"])
    return result


def on_failed(tx: Tx, job: dict[str, Any], at: str) -> None:
    """R11: previous assets, caption, brief and approval stay; lastError records the failure."""
    _restore(tx, job, at, failed_status="failed", last_error={
        "code": job["error"]["code"] if job.get("error") else "GENERATION_FAILED",
        "message": "The last generation failed; the previous content was kept.",
        "jobId": job["jobId"], "at": at,
    })


def on_canceled(tx: Tx, job: dict[str, Any], at: str) -> None:
    """R11: a canceled job leaves the container as it was before the job."""
    _restore(tx, job, at, failed_status="canceled", last_error=None)


def _restore(tx: Tx, job: dict[str, Any], at: str, *, failed_status: str,
             last_error: dict[str, Any] | None) -> None:
    for cid in job["containerIds"]:
        c = tenancy.get_container(tx, job["orgId"], cid)
        # A container that never completed has nothing to go back to.
        c["status"] = "completed" if c.get("generation", 0) > 0 else failed_status
        c["currentJobId"] = None
        c["updatedAt"] = at
        if last_error is not None:
            c["lastError"] = last_error
        tenancy.put_container(tx, c)
    billing.release(tx, job["orgId"], job["cost"])
