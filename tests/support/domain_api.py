"""Calling the domain service as the handlers do, for the domain tests (no HTTP)."""

from __future__ import annotations

import json

from layers_kit.mock.domain.errors import ApiError, envelope
from layers_kit.mock.domain.service import MockService
from tests.support import ids

DEMO = "org_00000000-0000-4000-8000-00000000000a"


class Api:
    """Calls the domain service the way the handlers do, and decodes its answers."""

    def __init__(self, service: MockService, key: str = ids.FULL) -> None:
        self.service = service
        self.principal = service.authenticate(key, None)

    def call(self, op: str, fail_job: bool = False, **params):
        """(status, body, reply); a refusal comes back as its status and D5 envelope."""
        try:
            reply = self.service.execute(op, self.principal, fail_job=fail_job, **params)
        except ApiError as err:
            return err.status, envelope(err, "req_test"), None
        return reply.status, json.loads(json.dumps(reply.body)), reply

    def regenerate(self, cid: str, body: dict | None = None, **kw):
        return self.call("regenerateContent", container_id=cid, body=body or {}, **kw)

    def content(self, cid: str) -> dict:
        status, body, _ = self.call("getContent", container_id=cid)
        assert status == 200, body
        return body

    def job(self, job_id: str) -> dict:
        status, body, _ = self.call("getJob", job_id=job_id, if_none_match=None)
        assert status == 200, body
        return body

    def credits(self, org_id: str) -> dict:
        return self.service.store.atomic(lambda tx: tx.get("org", org_id))

    def finish(self, job_id: str) -> dict:
        self.service.clock.advance(5 * self.service.settings.stage_seconds + 0.01)
        return self.job(job_id)

    def generate(self, project: str, fail_job: bool = False, **body):
        return self.call("generateContent", project_id=project, fail_job=fail_job,
                         body={"brief": {"topic": "Hardening"}, **body})

    def org(self, org_id: str = DEMO) -> dict:
        return self.service.store.atomic(lambda tx: tx.get("org", org_id))
