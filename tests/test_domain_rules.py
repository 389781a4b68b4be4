"""The rules of D4 (R1-R12), D7 and D9 on the domain layer alone: no HTTP, no framework."""

from __future__ import annotations

import pytest

from layers_kit.mock.domain import jobs, tenancy
from tests.support import ids
from tests.support.domain_api import DEMO, Api


@pytest.fixture
def api(service) -> Api:
    return Api(service)


def test_r1_accepted_envelope_and_location(api):
    status, body, stored = api.regenerate(ids.CNT_NOT_REQUIRED)
    assert status == 202
    assert body["kind"] == "content_regenerate" and body["status"] == "running"
    assert body["stage"] == "queued" and body["progress"] == 0
    assert body["containerId"] == ids.CNT_NOT_REQUIRED and body["projectId"] == ids.PRJ_AUTO
    assert body["locationUrl"] == f"/v1/jobs/{body['jobId']}"
    assert stored.headers["Location"] == body["locationUrl"]
    assert body["startedAt"].endswith("Z")


def test_r2_container_id_never_changes(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    job = api.finish(accepted["jobId"])
    assert job["status"] == "completed"
    assert job["result"]["containerId"] == ids.CNT_NOT_REQUIRED
    assert api.content(ids.CNT_NOT_REQUIRED)["id"] == ids.CNT_NOT_REQUIRED


def test_r3_only_new_assets_listed_after_completion(api):
    before = {a["assetId"] for a in api.content(ids.CNT_NOT_REQUIRED)["assets"]}
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.finish(accepted["jobId"])
    after = {a["assetId"] for a in api.content(ids.CNT_NOT_REQUIRED)["assets"]}
    assert after and not (after & before)


def test_r4_every_caption_differs_from_all_earlier_ones(api):
    captions = [api.content(ids.CNT_NOT_REQUIRED)["caption"]]
    for _ in range(4):
        _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED, {"preserveAssets": True})
        api.finish(accepted["jobId"])
        captions.append(api.content(ids.CNT_NOT_REQUIRED)["caption"])
    assert len(set(captions)) == len(captions)


def test_r5_brief_merge_and_references_replace(api):
    before = api.content(ids.CNT_NOT_REQUIRED)
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED, {
        "brief": {"topic": "New topic", "valuePropositions": ["Only this"]},
        "references": {"sourcePostIds": ["post_9"]},
    })
    api.finish(accepted["jobId"])
    after = api.content(ids.CNT_NOT_REQUIRED)
    assert after["brief"]["topic"] == "New topic"
    assert after["brief"]["angle"] == before["brief"]["angle"]
    assert after["brief"]["cta"] == before["brief"]["cta"]
    assert after["brief"]["valuePropositions"] == ["Only this"]
    assert after["references"] == {"sourcePostIds": ["post_9"], "assetIds": []}


def test_r5_omitted_references_are_kept(api):
    before = api.content(ids.CNT_APPROVED_SCHEDULED)
    _, accepted, _ = api.regenerate(ids.CNT_APPROVED_SCHEDULED, {"brief": {"cta": "Go"}})
    api.finish(accepted["jobId"])
    assert api.content(ids.CNT_APPROVED_SCHEDULED)["references"] == before["references"]


def test_r6_preserve_assets_keeps_asset_ids_and_changes_caption(api):
    before = api.content(ids.CNT_NOT_REQUIRED)
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED, {"preserveAssets": True})
    api.finish(accepted["jobId"])
    after = api.content(ids.CNT_NOT_REQUIRED)
    assert [a["assetId"] for a in after["assets"]] == [a["assetId"] for a in before["assets"]]
    assert after["caption"] != before["caption"]


def test_r7_superseded_assets_stay_readable(api):
    old = api.content(ids.CNT_NOT_REQUIRED)["assets"]
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    job = api.finish(accepted["jobId"])
    for asset in old:
        status, body, _ = api.call("getContentAsset", container_id=ids.CNT_NOT_REQUIRED,
                                   asset_id=asset["assetId"])
        assert status == 200 and body["supersededAt"] == job["finishedAt"]
    for asset in api.content(ids.CNT_NOT_REQUIRED)["assets"]:
        assert asset["supersededAt"] is None


def test_r8_review_all_resets_approved_to_pending(api):
    assert api.content(ids.CNT_APPROVED_SCHEDULED)["approvalStatus"] == "approved"
    _, accepted, _ = api.regenerate(ids.CNT_APPROVED_SCHEDULED)
    assert api.content(ids.CNT_APPROVED_SCHEDULED)["approvalStatus"] == "approved"  # not yet
    api.finish(accepted["jobId"])
    assert api.content(ids.CNT_APPROVED_SCHEDULED)["approvalStatus"] == "pending"


def test_r8_auto_approve_leaves_approval_unchanged(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.finish(accepted["jobId"])
    assert api.content(ids.CNT_NOT_REQUIRED)["approvalStatus"] == "not_required"


def test_r8_review_first_n_counts_down(api):
    status, _, _ = api.call("updateReviewPolicy", project_id=ids.PRJ_AUTO,
                            body={"policy": "review_first_n", "firstN": 1})
    assert status == 200
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.finish(accepted["jobId"])
    assert api.content(ids.CNT_NOT_REQUIRED)["approvalStatus"] == "pending"
    assert api.call("approveContent", container_id=ids.CNT_NOT_REQUIRED, body={})[0] == 200
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.finish(accepted["jobId"])
    assert api.content(ids.CNT_NOT_REQUIRED)["approvalStatus"] == "approved"  # count used up


def test_r9_scheduled_posts_untouched(api):
    before = api.content(ids.CNT_APPROVED_SCHEDULED)
    (post_id,) = before["scheduledPostIds"]
    _, post_before, _ = api.call("getScheduledPost", scheduled_post_id=post_id)
    _, accepted, _ = api.regenerate(ids.CNT_APPROVED_SCHEDULED)
    api.finish(accepted["jobId"])
    after = api.content(ids.CNT_APPROVED_SCHEDULED)
    _, post_after, _ = api.call("getScheduledPost", scheduled_post_id=post_id)
    assert after["scheduledPostIds"] == [post_id]
    assert post_after == post_before
    assert post_after["caption"] == before["caption"] != after["caption"]


def test_r10_second_regenerate_while_running_is_conflict(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    status, body, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    assert status == 409 and body["error"]["code"] == "CONFLICT"
    assert body["error"]["details"]["jobId"] == accepted["jobId"]
    api.finish(accepted["jobId"])
    assert api.regenerate(ids.CNT_NOT_REQUIRED)[0] == 202  # free again once it ended


@pytest.mark.parametrize("end", ["fail", "cancel"])
def test_r11_failed_or_canceled_job_keeps_previous_content(api, end):
    before = api.content(ids.CNT_APPROVED_SCHEDULED)
    credits = api.credits(DEMO)
    _, accepted, _ = api.regenerate(ids.CNT_APPROVED_SCHEDULED, {"brief": {"topic": "Changed"}},
                                    fail_job=end == "fail")
    assert api.credits(DEMO)["available"] == credits["available"] - 120  # reserved
    if end == "fail":
        job = api.finish(accepted["jobId"])
        assert job["status"] == "failed" and job["error"]["code"]
    else:
        status, body, _ = api.call("cancelJob", job_id=accepted["jobId"])
        assert (status, body["accepted"]) == (202, True)
        assert api.job(accepted["jobId"])["status"] == "canceled"
    after = api.content(ids.CNT_APPROVED_SCHEDULED)
    for field in ("assets", "caption", "brief", "approvalStatus", "references"):
        assert after[field] == before[field], field
    assert after["currentJobId"] is None and after["status"] == "completed"
    if end == "fail":
        assert after["lastError"]["jobId"] == accepted["jobId"]
    assert api.credits(DEMO) == credits  # released


def test_r12_not_found_is_identical_for_missing_and_other_org(api):
    missing = api.regenerate(ids.MISSING)
    other = api.regenerate(ids.CNT_OTHER)
    assert missing[0] == other[0] == 404
    strip = lambda b: {k: v for k, v in b["error"].items() if k != "requestId"}  # noqa: E731
    assert strip(missing[1]) == strip(other[1])


def test_r12_billing_exhausted_and_moderation(service):
    broke = Api(service, ids.BROKE)
    status, body, _ = broke.regenerate(ids.CNT_BROKE)
    assert status == 402 and body["error"]["code"] == "BILLING_EXHAUSTED"
    api = Api(service)
    status, body, _ = api.regenerate(ids.CNT_NOT_REQUIRED,
                                     {"brief": {"valuePropositions": ["x MODERATION-TEST-BLOCK"]}})
    assert status == 422 and body["error"]["code"] == "MODERATION_BLOCKED"
    assert api.content(ids.CNT_NOT_REQUIRED)["currentJobId"] is None  # nothing started


def test_d9_costs_reserved_kept_released(api):
    start = api.credits(DEMO)
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED, {"preserveAssets": True})
    assert api.credits(DEMO)["reserved"] == start["reserved"] + 10
    api.finish(accepted["jobId"])
    end = api.credits(DEMO)
    assert end["available"] == start["available"] - 10 and end["reserved"] == start["reserved"]


def test_d7_stages_in_order_progress_monotonic_terminal_sticky(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    seen, progress = [], []
    for _ in range(12):
        job = api.job(accepted["jobId"])
        seen.append(job["stage"])
        progress.append(job["progress"])
        api.service.clock.advance(0.5)
    assert job["status"] == "completed" and job["progress"] == 1
    order = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert order == list(jobs.STAGES)
    assert progress == sorted(progress)
    api.service.clock.advance(100)
    assert api.job(accepted["jobId"]) == job


def test_d7_container_shows_previous_content_while_running(api):
    before = api.content(ids.CNT_NOT_REQUIRED)
    api.regenerate(ids.CNT_NOT_REQUIRED, {"brief": {"topic": "Later"}})
    api.service.clock.advance(3)
    during = api.content(ids.CNT_NOT_REQUIRED)
    assert during["status"] == "generating"
    assert (during["assets"], during["caption"], during["brief"]) == (
        before["assets"], before["caption"], before["brief"])


def test_d7_etag_changes_with_the_job_and_304(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    _, _, first = api.call("getJob", job_id=accepted["jobId"], if_none_match=None)
    tag = first.headers["ETag"]
    status, body, _ = api.call("getJob", job_id=accepted["jobId"], if_none_match=tag)
    assert status == 304 and body is None
    api.service.clock.advance(1.1)
    status, _, moved = api.call("getJob", job_id=accepted["jobId"], if_none_match=tag)
    assert status == 200 and moved.headers["ETag"] != tag


def test_d7_cancel_rules(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.service.clock.advance(4.2)  # finalizing
    status, body, _ = api.call("cancelJob", job_id=accepted["jobId"])
    assert status == 409 and body["error"]["details"]["subcode"] == "JOB_CANCEL_UNAVAILABLE"
    api.service.clock.advance(1)
    status, body, _ = api.call("cancelJob", job_id=accepted["jobId"])
    assert (status, body["accepted"], body["reason"]) == (200, False, "ALREADY_COMPLETED")


def test_generate_creates_containers_through_a_job(api):
    status, accepted, _ = api.call("generateContent", project_id=ids.PRJ_REVIEW_ALL, body={
        "format": "slideshow_remix", "variantCount": 3, "brief": {"topic": "Three takes"}})
    assert status == 202 and len(accepted["containerIds"]) == 3
    assert accepted["containerId"] == accepted["containerIds"][0]
    assert api.content(accepted["containerId"])["status"] == "generating"
    job = api.finish(accepted["jobId"])
    assert job["result"]["containerIds"] == accepted["containerIds"]
    for cid in accepted["containerIds"]:
        c = api.content(cid)
        assert c["status"] == "completed" and c["approvalStatus"] == "pending"
        assert len(c["assets"]) == 4 and all(a["kind"] == "image" for a in c["assets"])


def test_bare_uuid_names_the_same_container(api):
    bare = ids.CNT_PENDING.removeprefix("cnt_")
    assert api.content(bare)["id"] == ids.CNT_PENDING


def test_schedule_needs_approval_and_snapshots_caption(api):
    status, body, _ = api.call("scheduleContent", container_id=ids.CNT_PENDING,
                               body={"scheduledFor": "2030-01-01T00:00:00Z"})
    assert status == 409 and body["error"]["code"] == "APPROVAL_REQUIRED"
    assert api.call("approveContent", container_id=ids.CNT_PENDING, body={})[0] == 200
    status, post, _ = api.call("scheduleContent", container_id=ids.CNT_PENDING,
                               body={"scheduledFor": "2030-01-01T00:00:00Z"})
    assert status == 201 and post["caption"] == api.content(ids.CNT_PENDING)["caption"]


def test_approve_not_required_is_conflict(api):
    status, body, _ = api.call("approveContent", container_id=ids.CNT_NOT_REQUIRED, body={})
    assert status == 409 and body["error"]["code"] == "CONFLICT"


def test_reset_restores_fixtures(api):
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.service.reset()
    assert api.content(ids.CNT_NOT_REQUIRED)["currentJobId"] is None
    assert api.call("getJob", job_id=accepted["jobId"], if_none_match=None)[0] == 404


def test_ended_jobs_and_superseded_assets_are_kept_for_the_retention_period(tmp_path):
    """Bounded memory: the storage lifecycle forgets ended jobs and superseded assets."""
    from layers_kit.mock.config import Config
    from layers_kit.mock.store.base import open_store
    from layers_kit.mock.web.app import build_service

    expiry = [1_000_000.0]  # the store's expiry clock, moved instead of waited for
    store = open_store("memory", now=lambda: expiry[0])
    service = build_service(Config(clock="manual", stage_seconds=1.0, retention_seconds=0.3),
                            store=store)
    api = Api(service)
    old = api.content(ids.CNT_NOT_REQUIRED)["assets"]
    _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED)
    api.finish(accepted["jobId"])
    status, _, _ = api.call("getContentAsset", container_id=ids.CNT_NOT_REQUIRED,
                            asset_id=old[0]["assetId"])
    assert status == 200  # R7 within the retention period
    expiry[0] += 0.4
    assert api.call("getJob", job_id=accepted["jobId"], if_none_match=None)[0] == 404
    assert api.call("getContentAsset", container_id=ids.CNT_NOT_REQUIRED,
                    asset_id=old[0]["assetId"])[0] == 404
    assert api.content(ids.CNT_NOT_REQUIRED)["assets"]  # current assets are kept


def test_caption_history_is_bounded_and_captions_stay_unique(api):
    seen = {api.content(ids.CNT_NOT_REQUIRED)["caption"]}
    for _ in range(25):
        _, accepted, _ = api.regenerate(ids.CNT_NOT_REQUIRED, {"preserveAssets": True})
        api.finish(accepted["jobId"])
        caption = api.content(ids.CNT_NOT_REQUIRED)["caption"]
        assert caption not in seen
        seen.add(caption)
    stored = api.service.store.atomic(
        lambda tx: tenancy.get_container(tx, DEMO, ids.CNT_NOT_REQUIRED))
    assert len(stored["captions"]) == 20
