"""One thin handler per operationId of openapi.yaml (resolved by name).

Each passes its validated parameters to `_run`, which applies the Prefer controls and the
idempotency rules (D6) and calls the domain. No rule lives here. `dispatch.py` calls them.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response

from mock import spec
from mock.domain.errors import ApiError
from mock.web import prefer, state
from mock.web.responses import from_stored

_NO_BODY = object()
_SUCCESS = {
    op_id: {int(s) for s in o["operation"]["responses"] if s[0] in "23"}
    for op_id, o in spec.operations().items()
}


async def _run(operation_id: str, body: Any = _NO_BODY, **params: Any) -> Response:
    st = state.current()
    service = st.service
    scope = st.scope
    headers = Headers(scope=scope)
    method = scope["method"]
    prefs = prefer.parse(headers.getlist("prefer"))
    forced = prefer.forced_response(operation_id, prefs, st.request_id, _SUCCESS[operation_id])
    if isinstance(forced, ApiError):
        raise forced
    if forced is not None:
        return from_stored(forced)
    if body is not _NO_BODY:
        # An absent body reaches us as None or b"" (no Content-Type): both mean "{}".
        params["body"] = body if isinstance(body, dict) else {}
    idem = None
    key = headers.get("idempotency-key")
    if key is not None and method in ("POST", "PATCH"):
        idem, replay = service.claim(st.principal, key, method, scope["path"],
                                     params.get("body"))
        if replay is not None:
            st.replayed = True
            return from_stored(replay, replayed=True)
    try:
        if prefs.latency_ms:
            await asyncio.sleep(prefs.latency_ms / 1000)
        stored = service.execute(operation_id, st.principal, st.request_id, idem=idem,
                                 fail_job=prefs.job_fail, **params)
    except BaseException:
        if idem is not None:  # cut short (client gone, server stopping): free the key
            service.release(idem)
        raise
    return from_stored(stored)


async def regenerateContent(containerId: str, body: dict | None = None) -> Response:
    return await _run("regenerateContent", body, container_id=containerId)


async def getContent(containerId: str) -> Response:
    return await _run("getContent", container_id=containerId)


async def getContentAsset(containerId: str, assetId: str) -> Response:
    return await _run("getContentAsset", container_id=containerId, asset_id=assetId)


async def generateContent(projectId: str, body: dict) -> Response:
    return await _run("generateContent", body, project_id=projectId)


async def approveContent(containerId: str, body: dict | None = None) -> Response:
    return await _run("approveContent", body, container_id=containerId)


async def scheduleContent(containerId: str, body: dict) -> Response:
    return await _run("scheduleContent", body, container_id=containerId)


async def getScheduledPost(scheduledPostId: str) -> Response:
    return await _run("getScheduledPost", post_id=scheduledPostId)


async def getJob(jobId: str) -> Response:
    inm = Headers(scope=state.current().scope).get("if-none-match")
    return await _run("getJob", job_id=jobId, if_none_match=inm)


async def cancelJob(jobId: str) -> Response:
    return await _run("cancelJob", job_id=jobId)


async def getReviewPolicy(projectId: str) -> Response:
    return await _run("getReviewPolicy", project_id=projectId)


async def updateReviewPolicy(projectId: str, body: dict) -> Response:
    return await _run("updateReviewPolicy", body, project_id=projectId)


__all__ = [name for name in spec.operations()]
# Which handlers take a body, so the dispatcher reads one only for them.
TAKES_BODY = {name: set(inspect.signature(globals()[name]).parameters) for name in __all__}
