"""What a check gets: clients per key, fresh containers, job waiting, and its exchanges."""

from __future__ import annotations

import itertools
from typing import Any

from conformance.client import Client, new_key
from conformance.contract import Contract
from conformance.failures import Exchange, NotRunnable, expect
from conformance.target import Target

GENERATE_BODY = {"format": "slideshow_remix", "variantCount": 1,
                 "brief": {"topic": "Conformance kit test content",
                           "angle": "Checking the contract", "cta": "Nothing to see here.",
                           "valuePropositions": ["Stable ids", "Predictable jobs"]}}


class Ctx:
    def __init__(self, target: Target, contract: Contract, rotation: itertools.cycle) -> None:
        self.target = target
        self.contract = contract
        self.exchanges: list[Exchange] = []
        self._clients: list[Client] = []
        self._rotation = rotation
        self.api = self.client(target.api_key)

    def client(self, key: str | None, *, bearer: bool = False) -> Client:
        c = Client(self.target.base_url, key, self.contract, self.exchanges,
                   timeout=self.target.request_timeout, bearer=bearer)
        self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()

    def wait(self, location: str, client: Client | None = None, *,
             steady: bool = False) -> list[dict[str, Any]]:
        return (client or self.api).wait_job(location, timeout=self.target.job_timeout,
                                             first=self.target.poll_interval,
                                             backoff=not steady)

    def finish(self, response, client: Client | None = None) -> dict[str, Any]:
        """Wait for the job a 202 started; returns its final state."""
        expect(response.status_code == 202, "the request starts a job (202)", expected=202,
               received=f"{response.status_code} {response.text[:300]}")
        return self.wait(response.json()["locationUrl"], client)[-1]

    def generate(self, client: Client | None = None, project_id: str | None = None,
                 wait: bool = True) -> str:
        """A new container made through generateContent; completed unless wait=False."""
        client = client or self.api
        project_id = project_id or self.target.project_id
        r = client.post(f"/v1/projects/{project_id}/content", json=GENERATE_BODY,
                        headers={"Idempotency-Key": new_key()})
        expect(r.status_code == 202, "generateContent starts a job (202)", expected=202,
               received=f"{r.status_code} {r.text[:300]}")
        if wait:
            final = self.wait(r.json()["locationUrl"], client)[-1]
            expect(final["status"] == "completed", "a generation job completes",
                   expected="completed", received=final.get("status"))
        return r.json()["containerId"]

    def container(self) -> str:
        """A completed container of the caller's org with no job running."""
        if self.target.project_id:
            return self.generate()
        if not self.target.container_ids:
            raise NotRunnable("no container to work on", "--project-id or --container-id")
        cid = next(self._rotation)
        current = self.api.content(cid)
        if current.get("currentJobId"):
            self.wait(f"/v1/jobs/{current['currentJobId']}")
        return cid
