"""A partner's tests of their own client against the mock, with the `layers_mock` fixture."""

import uuid

import httpx
import pytest

PROJECT = "prj_00000000-0000-4000-8000-000000000002"  # Demo's project, auto_approve
BROKE_CONTAINER = "cnt_00000000-0000-4000-8000-000000000004"  # its org has no credits


@pytest.fixture
def api(layers_mock):
    """Your client; here plain httpx, pointed at the mock with the full-scope test key."""
    headers = {"X-Api-Key": layers_mock.keys["full"]}
    with httpx.Client(base_url=layers_mock.url, headers=headers) as client:
        yield client


def test_generate_poll_and_read_the_content(api, layers_mock):
    r = api.post(f"/v1/projects/{PROJECT}/content",
                 headers={"Idempotency-Key": str(uuid.uuid4())},
                 json={"format": "video_remix", "brief": {"topic": "Couch to 5k"}})
    assert r.status_code == 202
    job = r.json()
    for _ in range(10):  # your polling loop; the mock's clock moves only when told
        job = api.get(job["locationUrl"]).json()
        if job["status"] != "running":
            break
        layers_mock.advance(1)  # one stage (--layers-mock-stage-seconds, default 1)
    assert job["status"] == "completed"
    content = api.get(f"/v1/content/{job['result']['containerId']}").json()
    assert content["status"] == "completed"
    assert content["caption"] and content["assets"]
    assert len(layers_mock.requests(operationId="getJob")) == 6  # running x5, then completed


def test_an_org_without_credits_meets_402(layers_mock):
    broke = {"X-Api-Key": layers_mock.keys["broke"]}
    r = httpx.post(f"{layers_mock.url}/v1/content/{BROKE_CONTAINER}/regenerate", headers=broke)
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "BILLING_EXHAUSTED"


def test_one_503_then_the_retry_succeeds(api, layers_mock):
    layers_mock.fault(match={"operationId": "getContent"}, status=503, count=1)
    url = "/v1/content/cnt_00000000-0000-4000-8000-000000000103"
    assert api.get(url).status_code == 503
    assert api.get(url).status_code == 200


def test_a_lost_answer_is_retried_with_the_same_key(api, layers_mock):
    layers_mock.chaos(1.0, kinds=["drop"], operations=["regenerateContent"])
    url, key = "/v1/content/cnt_00000000-0000-4000-8000-000000000103/regenerate", str(uuid.uuid4())
    with pytest.raises(httpx.TransportError):  # no answer, but the job did start
        api.post(url, json={}, headers={"Idempotency-Key": key})
    layers_mock.clear_chaos()
    again = api.post(url, json={}, headers={"Idempotency-Key": key})  # the retry: same key
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    layers_mock.assert_client_behaves()  # the client rules C1-C6, judged from the journal
