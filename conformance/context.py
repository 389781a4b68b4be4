"""What a check gets: clients per key, fresh containers, job waiting, and its exchanges.

Setup is told apart from the rule: when the target refuses to set a check up for its own
reasons (credits short, a key without the scope the setup needs, rate limits after retries),
the check is `inconclusive` and says what it needed; only what the rule names can fail it.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import httpx

from layers_kit.conformance.client import Client, new_key
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.failures import Exchange, Inconclusive, NotRunnable, Violation, expect
from layers_kit.conformance.observations import Observations
from layers_kit.conformance.pacing import Pacer
from layers_kit.conformance.target import Target

GENERATE_BODY = {"format": "slideshow_remix", "variantCount": 1,
                 "brief": {"topic": "Conformance kit test content",
                           "angle": "Checking the contract", "cta": "Nothing to see here.",
                           "valuePropositions": ["Stable ids", "Predictable jobs"]}}

# The option that supplies each key a check may use, to name it when its scopes fall short.
KEY_OPTIONS = {"api": "--api-key", "extra": "--extra-api-key", "readonly": "--readonly-key",
               "other": "--other-org-key", "broke": "--broke-key"}


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        err = response.json()["error"]
        return err if isinstance(err, dict) else {}
    except (ValueError, KeyError, TypeError):
        return {}


# Containers one generateContent makes for the run's pool (the contract's maximum variantCount).
POOL_BATCH = 5


class ContainerPool:
    """Fresh containers for the checks of one run (with --project-id): one generateContent of
    POOL_BATCH variants makes POOL_BATCH new completed containers for one job start, and each
    is handed to exactly one check, so a check still works on a container no other check
    touched, made by generateContent and completed, as when it generated its own; the run
    spends a fifth of the job starts on them (a rate-limited target counts every job start).

    The check that finds the pool empty generates the next batch with its own client (its
    exchanges show the setup); the others wait for that batch. A batch that does not complete
    makes that check inconclusive, and the next check tries a batch of its own.
    """

    def __init__(self, batch: int = POOL_BATCH) -> None:
        self.batch = batch
        self._ready: list[str] = []
        self._lock = threading.Lock()
        self.made = 0  # batches generated

    def take(self, ctx: Ctx) -> str:
        with self._lock:
            if not self._ready:
                try:
                    self._ready = ctx.generate_batch(self.batch)
                except (Violation, Inconclusive):
                    # A batch the target refused or did not complete (credits for one variant
                    # but not five, say): the check makes its own container as it always did,
                    # and judges or reports that one.
                    return ctx.generate()
                self.made += 1
            return self._ready.pop(0)


class Ctx:
    def __init__(self, target: Target, contract: Contract, rotation: itertools.cycle, *,
                 observations: Observations | None = None, check: str = "",
                 pool: ContainerPool | None = None, pacer: Pacer | None = None,
                 key: str | None = None, project: str | None = None) -> None:
        self.target = target
        # the project the check generates in and may change the review policy of
        self.project = project or target.project_id
        self.key = key or target.api_key  # the key of `api` (one of the run's: key_shares)
        self.contract = contract
        self.observations = observations or Observations()
        self.check = check
        self.pool = pool
        self.pacer = pacer
        self.exchanges: list[Exchange] = []
        self._clients: list[Client] = []
        self._rotation = rotation
        self.roles: dict[int, str] = {}
        self.api = self.client(self.key)

    def client(self, key: str | None, *, bearer: bool = False,
               role: str | None = None) -> Client:
        """A client of this check with `key`; `role` names the option that gave the key
        (KEY_OPTIONS), by default --api-key's, or --extra-api-key's for one of those."""
        if role is None:
            role = "extra" if key in self.target.extra_api_keys and key != self.target.api_key \
                else "api"
        c = Client(self.target.base_url, key, self.contract, self.exchanges,
                   timeout=self.target.request_timeout, bearer=bearer,
                   observations=self.observations, check=self.check,
                   max_wait=self.target.max_wait, tls_settings=self.target.tls,
                   pacer=self.pacer)
        self._clients.append(c)
        self.roles[id(c)] = role
        return c

    def close(self) -> None:
        for c in self._clients:
            c.close()

    # ---- setup the target may refuse for its own reasons -------------------------------------

    def refused(self, response: httpx.Response, what: str, client: Client | None = None) -> None:
        """Inconclusive when a setup request meets credits short or a missing scope."""
        err = _error(response)
        code = err.get("code")
        option = KEY_OPTIONS.get(self.roles.get(id(client or self.api), "api"), "--api-key")
        if response.status_code == 402 or code == "BILLING_EXHAUSTED":
            raise Inconclusive(f"{what}: the target answered {response.status_code} "
                               f"BILLING_EXHAUSTED (the org ran out of credits)",
                               needed=f"credits for {option}'s org (a full run reserves about "
                                      "the figures printed at its end)")
        if response.status_code == 403 and code == "FORBIDDEN_SCOPE":
            scope = (err.get("details") or {}).get("requiredScope", "a scope")
            raise Inconclusive(f"{what}: {option} lacks the scope {scope} (403 FORBIDDEN_SCOPE)",
                               needed=f"{option} with the scope {scope}")

    def started(self, response: httpx.Response, what: str = "the request starts a job",
                client: Client | None = None) -> dict[str, Any]:
        """The 202 job envelope of a request that should start a job."""
        if response.status_code != 202:
            self.refused(response, what, client)
        expect(response.status_code == 202, f"{what} (202)", expected=202,
               received=f"{response.status_code} {response.text[:300]}", response=response)
        return response.json()

    @staticmethod
    def location(envelope: dict[str, Any], response: httpx.Response | None = None) -> str:
        """Where to poll a job: locationUrl, else the Location header, else the job's path.
        (R1 judges locationUrl; other checks must not fail for its absence.)"""
        loc = envelope.get("locationUrl")
        if not loc and response is not None:
            loc = response.headers.get("location")
        return loc or f"/v1/jobs/{envelope.get('jobId')}"

    # ---- jobs -------------------------------------------------------------------------------

    def wait(self, location: str, client: Client | None = None, *, steady: bool = False,
             interval: float | None = None,
             responses: list[httpx.Response] | None = None) -> list[dict[str, Any]]:
        return (client or self.api).wait_job(location, timeout=self.target.job_timeout,
                                             first=interval or self.target.poll_interval,
                                             backoff=not steady, responses=responses)

    def finish(self, response: httpx.Response, client: Client | None = None) -> dict[str, Any]:
        """Wait for the job a 202 started; returns its final state."""
        envelope = self.started(response, client=client)
        return self.wait(self.location(envelope, response), client)[-1]

    def completes(self, response: httpx.Response) -> dict[str, Any]:
        """The job a setup regenerate starts, which must complete for the rule to be judged."""
        final = self.finish(response)
        if final.get("status") != "completed":
            raise Inconclusive(f"the job ended {final.get('status')} instead of completing: "
                               f"{final.get('error')}", needed="a regeneration that completes")
        return final

    def generate(self, client: Client | None = None, project_id: str | None = None,
                 wait: bool = True) -> str:
        """A new container made through generateContent; completed unless wait=False."""
        return self.generate_batch(1, client, project_id, wait)[0]

    def generate_batch(self, variants: int, client: Client | None = None,
                       project_id: str | None = None, wait: bool = True) -> list[str]:
        """New containers (`variants` of them, one job) made through generateContent;
        completed unless wait=False."""
        client = client or self.api
        project_id = project_id or self.project
        r = client.post(f"/v1/projects/{project_id}/content",
                        json={**GENERATE_BODY, "variantCount": variants},
                        headers={"Idempotency-Key": new_key()})
        what = "generateContent starts a job for " + (
            "a new container" if variants == 1 else f"{variants} new containers")
        envelope = self.started(r, what, client)
        if wait:
            final = self.wait(self.location(envelope, r), client)[-1]
            if final.get("status") != "completed":
                raise Inconclusive(f"the generation of a container to test ended "
                                   f"{final.get('status')}: {final.get('error')}",
                                   needed="a generateContent job that completes")
        ids = envelope.get("containerIds")
        if variants == 1 or not isinstance(ids, list) or len(ids) != variants:
            ids = [envelope["containerId"]]  # R-rules judge containerIds, not the setup
        return list(ids)

    def container(self) -> str:
        """A completed container of the caller's org with no job running: from the run's
        pool with --project-id (a new one, no other check's), else one of --container-id."""
        if self.target.project_id:
            return self.pool.take(self) if self.pool is not None else self.generate()
        if not self.target.container_ids:
            raise NotRunnable("no container to work on", "--project-id or --container-id")
        cid = next(self._rotation)
        current = self.api.content(cid)
        if current.get("currentJobId"):
            self.wait(f"/v1/jobs/{current['currentJobId']}")
        return cid
