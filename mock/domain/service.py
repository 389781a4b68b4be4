"""The mock's domain facade: what the web layer calls, one method per concern.

It owns the store, the clock, the keyring and the settings, runs each operation in one store
transaction, and applies the idempotency rules of D6 around it. It returns finished responses
(status, headers, JSON text) so that a replay is byte for byte the first answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from mock.config import Config
from mock.domain import fixtures as fixtures_mod
from mock.domain import idempotency, jobs, operations, ratelimit
from mock.domain.auth import Keyring, Principal
from mock.domain.clock import Clock
from mock.domain.errors import STORED_ERROR_CODES, ApiError, envelope
from mock.domain.idempotency import Stored
from mock.domain.operations import Ctx, Reply, Settings
from mock.store.base import Store

OPERATIONS: dict[str, Callable[..., Reply]] = {
    "regenerateContent": operations.regenerate_content,
    "getContent": operations.get_content,
    "getContentAsset": operations.get_content_asset,
    "generateContent": operations.generate_content,
    "approveContent": operations.approve_content,
    "scheduleContent": operations.schedule_content,
    "getScheduledPost": operations.get_scheduled_post,
    "getJob": operations.get_job,
    "cancelJob": operations.cancel_job,
    "getReviewPolicy": operations.get_review_policy,
    "updateReviewPolicy": operations.update_review_policy,
}


def dumps(body: Any) -> str:
    """The JSON text of a response: compact, UTF-8, the same bytes for the same body."""
    return orjson.dumps(body).decode()


def error_response(err: ApiError, request_id: str) -> Stored:
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id, **err.headers}
    return Stored(err.status, headers, dumps(envelope(err, request_id)))


class Idem:
    """A claimed Idempotency-Key for one request."""

    def __init__(self, scope: str, key: str, fp: str) -> None:
        self.scope, self.key, self.fp = scope, key, fp


class MockService:
    def __init__(self, store: Store, clock: Clock, fx: fixtures_mod.Fixtures,
                 config: Config) -> None:
        self.store = store
        self.clock = clock
        self.fixtures = fx
        self.config = config
        self.keyring = Keyring(fx.keys)
        self.settings = Settings(stage_seconds=config.stage_seconds,
                                 retention_seconds=config.retention_seconds,
                                 moderation_terms=fx.moderation_terms)
        self.idempotency_ttl = config.idempotency_ttl
        self.due = jobs.DueSweeper(min(jobs.DUE_BUCKET_SECONDS, config.stage_seconds))
        self.rate_tiers = ratelimit.tiers(fx.data)
        if config.rate_limits != ratelimit.OFF and config.rate_limits not in self.rate_tiers:
            raise ValueError(f"--rate-limits {config.rate_limits}: the fixtures define no such "
                             f"tier (they have: {', '.join(self.rate_tiers) or 'none'})")

    def reset(self) -> None:
        """Back to the fixtures: state, journal and (manual) clock."""
        self.clock.reset()
        fixtures_mod.seed(self.store, self.fixtures, self.clock.now())

    def ensure_seeded(self) -> None:
        """Seed an empty store; keep the state of a durable store that already has it."""
        probe = self.fixtures.data["orgs"][0]["id"]
        if self.store.atomic(lambda tx: tx.get("org", probe)) is None:
            self.reset()

    def authenticate(self, api_key: str | None, authorization: str | None) -> Principal:
        return self.keyring.authenticate(api_key, authorization)

    def rate_limit(self, principal: Principal, rate_class: str | None) -> None:
        """D13: take a token from the key's bucket for the class; RateLimited when empty."""
        tier = ratelimit.tier_for(principal.rate_tier, self.config.rate_limits, self.rate_tiers)
        if tier is not None and rate_class is not None:
            ratelimit.take(self.store, principal.key_id, rate_class, tier, self.clock.now())

    def claim(self, principal: Principal, key: str, method: str, path: str,
              body: Any) -> tuple[Idem, Stored | None]:
        """D6: claim the key; a Stored means replay it. Raises IDEMPOTENCY_* conflicts."""
        idem = Idem(principal.key_id, key, idempotency.fingerprint(method, path, body))
        return idem, idempotency.begin(self.store, idem.scope, key, idem.fp,
                                       self.idempotency_ttl)

    def release(self, idem: Idem) -> None:
        idempotency.release(self.store, idem.scope, idem.key)

    def execute(self, operation_id: str, principal: Principal, request_id: str, *,
                idem: Idem | None = None, fail_job: bool = False, **params: Any) -> Stored:
        """Run one operation in one transaction; errors come back rendered, never raised."""
        op = OPERATIONS[operation_id]
        ctx = Ctx(principal=principal, now=self.clock.now(), settings=self.settings,
                  fail_job=fail_job)
        # Jobs end whether or not anyone reads them (jobs.settle_due).
        self.due.run(self.store, ctx.now, exact=operation_id in operations.READS_BALANCE)

        def run(tx) -> Stored:
            reply = op(tx, ctx, **params)
            headers = {"X-Request-Id": request_id, **reply.headers}
            if reply.body is not None:
                headers["Content-Type"] = "application/json"
            out = Stored(reply.status, headers, "" if reply.body is None else dumps(reply.body))
            if idem is not None:
                idempotency.record(tx, idem.scope, idem.key, idem.fp, out, self.idempotency_ttl)
            return out

        try:
            return self.store.atomic(run)
        except ApiError as err:
            out = error_response(err, request_id)
            if idem is not None:
                if err.code in STORED_ERROR_CODES:  # D6: outcomes of the operation are kept
                    self.store.atomic(lambda tx: idempotency.record(
                        tx, idem.scope, idem.key, idem.fp, out, self.idempotency_ttl))
                else:
                    self.release(idem)
            return out
