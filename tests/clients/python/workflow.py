"""A partner's program on the client openapi-python-client generates from openapi.yaml.

Run by tests/test_generated_clients.py against the real mock, after `mypy --strict` has
checked it together with the generated package `layers_client`: every value below is read
through the generated types, without a cast. Prints a JSON summary for the test.

    python workflow.py BASE_URL
"""

from __future__ import annotations

import json
import sys
import uuid

import httpx
from layers_client import AuthenticatedClient
from layers_client.api.content import generate_content, get_content, regenerate_content
from layers_client.api.jobs import get_job
from layers_client.models import (
    BillingExhaustedEnvelope,
    BriefUpdate,
    ConflictError,
    Container,
    GenerateRequest,
    Job,
    JobAccepted,
    JobStatus,
    NewBrief,
    RegenerateRequest,
    WriteConflictEnvelope,
)
from layers_client.types import Unset

CONTAINER = "cnt_00000000-0000-4000-8000-000000000103"
PROJECT = "prj_00000000-0000-4000-8000-000000000002"
BROKE_CONTAINER = "cnt_00000000-0000-4000-8000-000000000004"


def advance(base_url: str, seconds: float) -> None:
    """Move the mock's manual clock (its control API, outside the contract)."""
    httpx.post(f"{base_url}/__mock/clock/advance", json={"seconds": seconds}).raise_for_status()


def main(base_url: str) -> dict[str, object]:
    full = AuthenticatedClient(base_url=base_url, token="lp_test_full")
    broke = AuthenticatedClient(base_url=base_url, token="lp_test_broke")

    started = regenerate_content.sync(
        CONTAINER, client=full, idempotency_key=str(uuid.uuid4()),
        body=RegenerateRequest(brief=BriefUpdate(topic="Thirty days, one run at a time.")))
    assert isinstance(started, JobAccepted), started

    busy = regenerate_content.sync(CONTAINER, client=full, body=RegenerateRequest())
    assert isinstance(busy, WriteConflictEnvelope), busy
    assert isinstance(busy.error, ConflictError), busy.error
    running_job = busy.error.details.job_id if not isinstance(busy.error.details, Unset) else None

    advance(base_url, 60)
    job = get_job.sync(started.job_id, client=full)
    assert isinstance(job, Job), job
    container = get_content.sync(CONTAINER, client=full)
    assert isinstance(container, Container), container

    generated = generate_content.sync(
        PROJECT, client=full,
        body=GenerateRequest(brief=NewBrief(topic="Couch to 5k in thirty days"), variant_count=2))
    assert isinstance(generated, JobAccepted), generated

    refused = regenerate_content.sync(BROKE_CONTAINER, client=broke, body=RegenerateRequest())
    assert isinstance(refused, BillingExhaustedEnvelope), refused
    cost: int = refused.error.details.cost
    available: int = refused.error.details.available

    return {
        "jobId": started.job_id,
        "conflictJobId": running_job,
        "jobStatus": job.status.value,
        "completed": job.status == JobStatus.COMPLETED,
        "assetCount": len(container.assets),
        "generatedContainers": len(generated.container_ids)
        if not isinstance(generated.container_ids, Unset) else 0,
        "billing": {"code": refused.error.code.value, "cost": cost, "available": available,
                    "costType": type(cost).__name__},
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
