"""The baseline: a bare Starlette app returning the same JSON as the mock, with no validation,
auth or state. `python bench/baseline_app.py PORT WORKERS`."""

from __future__ import annotations

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JOB = json.dumps({
    "jobId": "job_01HXZ9G7KMV2QX8Y1S5RJW3B7T", "kind": "content_regenerate", "status": "running",
    "stage": "planning", "progress": 0.2,
    "containerId": "cnt_00000000-0000-4000-8000-000000000103",
    "projectId": "prj_00000000-0000-4000-8000-000000000002",
    "locationUrl": "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T",
    "startedAt": "2026-11-02T10:15:30.120Z", "updatedAt": "2026-11-02T10:15:32.120Z",
}, separators=(",", ":")).encode()
ACCEPTED = json.dumps({
    "jobId": "job_01HXZ9G7KMV2QX8Y1S5RJW3B7T", "kind": "content_regenerate", "status": "running",
    "stage": "queued", "progress": 0, "containerId": "cnt_00000000-0000-4000-8000-000000000103",
    "projectId": "prj_00000000-0000-4000-8000-000000000002",
    "locationUrl": "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T",
    "startedAt": "2026-11-02T10:15:30.120Z",
}, separators=(",", ":")).encode()


async def get_job(request: Request) -> Response:
    return Response(JOB, media_type="application/json", headers={"ETag": '"x"'})


async def regenerate(request: Request) -> Response:
    await request.body()
    return Response(ACCEPTED, status_code=202, media_type="application/json",
                    headers={"Location": "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T"})


app = Starlette(routes=[Route("/v1/jobs/{job_id}", get_job),
                        Route("/v1/content/{cid}/regenerate", regenerate, methods=["POST"])])

if __name__ == "__main__":
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    target = "baseline_app:app" if workers > 1 else app
    uvicorn.run(target, host="127.0.0.1", port=port, workers=workers, log_level="error",
                access_log=False)
