"""Domain defects found by hardening, on the domain layer alone: the tenant oracle of
generateContent, jobs that end unobserved, and costs that must not grow with a project's size
(counted in store operations, not timed)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from layers_kit.mock.domain import jobs, review, tenancy
from layers_kit.mock.domain.operations import new_container
from layers_kit.mock.store.base import open_store
from layers_kit.mock.store.counting import CountingStore
from layers_kit.mock.web.app import Config, build_service
from tests.support import domain_api, ids
from tests.support.domain_api import DEMO

OTHER_ORG = "org_00000000-0000-4000-8000-00000000000b"


class Api(domain_api.Api):
    """The shared domain caller, answering (status, body) only."""

    def call(self, op: str, fail_job: bool = False, **params):
        return super().call(op, fail_job=fail_job, **params)[:2]


@pytest.fixture
def counted():
    store = CountingStore(open_store("memory"))
    service = build_service(Config(clock="manual", stage_seconds=1.0), store=store)
    return service, store


# ---- D8/R12: no tenant existence oracle in generateContent ------------------------------------

def test_generate_with_another_orgs_container_id_is_like_a_free_id(counted):
    service, _ = counted
    other_before = service.store.atomic(
        lambda tx: tenancy.get_container(tx, OTHER_ORG, ids.CNT_OTHER))
    taken = ids.CNT_OTHER.removeprefix("cnt_")
    free = str(uuid.uuid4())
    demo = Api(service)
    s_taken, b_taken = demo.generate(ids.PRJ_AUTO, id=taken)
    s_free, _ = demo.generate(ids.PRJ_AUTO, id=free)
    assert (s_taken, s_free) == (202, 202)
    assert b_taken["containerId"] == ids.CNT_OTHER  # the caller's own container, same id
    # The other org's container was neither changed nor even read under its key.
    other_after = service.store.atomic(
        lambda tx: tenancy.get_container(tx, OTHER_ORG, ids.CNT_OTHER))
    assert other_after == other_before
    status, view = Api(service, ids.OTHER).call("getContent", container_id=ids.CNT_OTHER)
    assert status == 200 and view["status"] == "completed" and view["projectId"] == ids.PRJ_OTHER
    # And within one's own org the id is in use: 409 as before.
    assert demo.generate(ids.PRJ_AUTO, id=taken)[0] == 409


def test_generate_with_another_orgs_id_costs_the_same_store_work_as_a_free_id(counted):
    service, store = counted
    demo = Api(service)
    demo.generate(ids.PRJ_AUTO)  # warm: the deadline bucket of this clock reading exists
    store.take()
    demo.generate(ids.PRJ_AUTO, id=ids.CNT_OTHER.removeprefix("cnt_"))
    taken = store.take()
    demo.generate(ids.PRJ_AUTO, id=str(uuid.uuid4()))
    free = store.take()
    assert (taken.reads, taken.writes) == (free.reads, free.writes)


# ---- D7: jobs end unobserved ------------------------------------------------------------------

def test_a_failed_job_nobody_reads_releases_its_credits_before_the_next_charge(counted):
    service, _ = counted
    demo = Api(service)
    start = demo.org()
    status, job = demo.generate(ids.PRJ_AUTO, variantCount=2, fail_job=True)
    assert status == 202
    assert demo.org()["reserved"] == start["reserved"] + 240
    service.clock.advance(10)  # past the failure; nobody reads the job or its containers
    status, _ = demo.generate(ids.PRJ_AUTO)  # reads the balance
    org = demo.org()
    assert status == 202
    assert org["reserved"] == start["reserved"] + 120  # the failed job's 240 came back
    stored = service.store.atomic(lambda tx: tx.get("job", job["jobId"]))
    assert stored["status"] == "failed"


def test_a_completed_job_nobody_reads_ends_on_any_later_request(counted):
    service, _ = counted
    demo = Api(service)
    _, job = demo.generate(ids.PRJ_AUTO)
    service.clock.advance(10)
    # Any request at all (here another org's read) lets the sweep end it.
    Api(service, ids.OTHER).call("getContent", container_id=ids.CNT_OTHER)
    stored = service.store.atomic(lambda tx: tx.get("job", job["jobId"]))
    assert stored["status"] == "completed"
    assert demo.org()["spent"] >= 120
    container = service.store.atomic(
        lambda tx: tenancy.get_container(tx, DEMO, job["containerId"]))
    assert container["status"] == "completed" and container["currentJobId"] is None
    # The ended job now has its retention (a TTL in the store); a running one has none.
    assert service.store._data[("job", job["jobId"])][1] is not None


def test_the_deadline_index_empties_as_jobs_end(counted):
    service, _ = counted
    demo = Api(service)
    for _ in range(5):
        demo.generate(ids.PRJ_AUTO)
    service.clock.advance(10)
    demo.generate(ids.PRJ_AUTO)  # settles the five, indexes one
    index = service.store.atomic(lambda tx: jobs.indexed(tx, DEMO))
    # Left: the new job, and the fixtures' hour-long running job.
    assert len(index) == 2


def test_the_deadline_index_is_one_document_per_org(counted):
    """No document that every job start writes: two orgs' starts share no index document,
    so concurrent workers serving different orgs do not collide on it (Redis
    workers' optimistic transactions did, on a store-wide index)."""
    service, _ = counted
    _, a = Api(service).generate(ids.PRJ_AUTO)
    _, b = Api(service, ids.OTHER).generate(ids.PRJ_OTHER)
    assert (a["status"], b["status"]) == ("running", "running")
    other_org = service.authenticate(ids.OTHER, None).org_id
    due = service.store.atomic(lambda tx: (jobs.indexed(tx, DEMO), jobs.indexed(tx, other_org)))
    assert a["jobId"] in due[0] and a["jobId"] not in due[1]
    assert b["jobId"] in due[1] and b["jobId"] not in due[0]
    assert service.store.atomic(lambda tx: tx.get(jobs.DUE, "schedule")) is None


def test_a_job_another_process_started_ends_within_the_sweep_interval(counted):
    """A second service on the same store (another worker) knows nothing of this one's jobs;
    its periodic sweep of every org's index still ends them."""
    service, _ = counted
    worker2 = build_service(Config(clock="manual", stage_seconds=1.0), store=service.store)
    Api(worker2, ids.OTHER).call("getContent", container_id=ids.CNT_OTHER)  # its first sweep
    _, job = Api(service).generate(ids.PRJ_AUTO)  # a job worker2 has not seen
    worker2.clock.advance(10)
    Api(worker2, ids.OTHER).call("getContent", container_id=ids.CNT_OTHER)
    stored = service.store.atomic(lambda tx: tx.get("job", job["jobId"]))
    assert stored["status"] == "completed"


# ---- cost independent of project size ------------------------------------------------------

def _fill(service, project_id: str, n: int) -> None:
    """n completed containers in the project, every tenth pending approval."""
    def write(tx) -> None:
        project = tx.get("project", project_id)
        for i in range(n):
            c = new_container(f"cnt_{uuid.uuid4()}", project, "video_remix",
                              {"topic": f"t{i}"}, {}, "2026-01-01T00:00:00.000Z",
                              status="completed", job_id=None)
            review.set_approval(tx, c, "pending" if i % 10 == 0 else "approved")
            tenancy.put_container(tx, c)

    service.store.atomic(write)


def _costs(n: int):
    store = CountingStore(open_store("memory"))
    service = build_service(Config(clock="manual", stage_seconds=1.0), store=store)
    _fill(service, ids.PRJ_AUTO, n)
    demo = Api(service)
    demo.generate(ids.PRJ_AUTO)  # warm: the deadline bucket of this clock reading exists
    store.take()
    assert demo.generate(ids.PRJ_AUTO, variantCount=3)[0] == 202
    generate = store.take()
    status, policy = demo.call("getReviewPolicy", project_id=ids.PRJ_AUTO)
    assert status == 200 and policy["pendingCount"] == n // 10
    read_policy = store.take()
    return generate, read_policy


def test_generate_and_get_review_policy_cost_the_same_at_10_and_10000_containers():
    small_gen, small_policy = _costs(10)
    big_gen, big_policy = _costs(10_000)
    assert (big_gen.reads, big_gen.writes) == (small_gen.reads, small_gen.writes)
    assert (big_policy.reads, big_policy.writes) == (small_policy.reads, small_policy.writes)
    # No document grows with the project either (bytes within a few percent).
    assert big_gen.bytes_read <= small_gen.bytes_read * 1.1 + 64
    assert big_gen.bytes_written <= small_gen.bytes_written * 1.1 + 64
    assert big_policy.bytes_read <= small_policy.bytes_read * 1.1 + 64


def test_pending_count_follows_approvals_and_completions(counted):
    service, _ = counted
    demo = Api(service)

    def pending() -> int:
        return demo.call("getReviewPolicy", project_id=ids.PRJ_REVIEW_ALL)[1]["pendingCount"]

    assert pending() == 1  # the fixtures' pending container
    assert demo.call("approveContent", container_id=ids.CNT_PENDING, body={})[0] == 200
    assert pending() == 0
    _, job = demo.generate(ids.PRJ_REVIEW_ALL, variantCount=2)
    service.clock.advance(10)
    demo.call("getJob", job_id=job["jobId"], if_none_match=None)
    assert pending() == 2  # review_all: both new containers wait for approval


# ---- stores -------------------------------------------------------------------------------------

def test_sqlite_failed_commit_is_not_masked_by_the_rollback(tmp_path):
    """When the transaction had ended already (as a failed COMMIT may leave it), the ROLLBACK
    failed too and its error replaced the real one: the COMMIT's error is the one raised."""
    store = open_store(f"sqlite:///{tmp_path}/m.db")

    def fn(tx):
        store._conn().execute("ROLLBACK")  # the transaction is gone before the commit

    with pytest.raises(sqlite3.OperationalError, match="cannot commit"):
        store.atomic(fn)
    assert store.atomic(lambda tx: tx.get("org", "x")) is None  # still usable
    store.close()
