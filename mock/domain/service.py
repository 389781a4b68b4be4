"""The mock's domain facade: the store, the clock, the keyring and the settings, together.

`call` runs one operation inside a transaction the caller opened (the web layer's idempotency
wraps it, see `idempotency.respond`); the clock is read through that same transaction, so a
manual clock costs no transaction of its own. The domain returns `Reply`s and raises
`ApiError`s: it knows nothing of HTTP framing (request ids, content types, envelopes on the
wire), which the web layer adds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from layers_kit.mock.config import Config
from layers_kit.mock.domain import fixtures as fixtures_mod
from layers_kit.mock.domain import jobs, operations, ratelimit
from layers_kit.mock.domain.auth import Keyring, Principal
from layers_kit.mock.domain.clock import Clock
from layers_kit.mock.domain.operations import Ctx, Reply, Settings
from layers_kit.mock.store.base import Store, Tx


def domain_function(operation_id: str) -> Callable[..., Reply]:
    """The domain function of an operationId: its snake-case name in `operations`.

    Fails at start (from the registry) when the spec names an operation the domain lacks.
    """
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation_id).lower()
    fn = getattr(operations, name, None)
    if not callable(fn):
        raise ValueError(f"openapi.yaml names operation {operation_id}, which has no domain "
                         f"function mock.domain.operations.{name}")
    return fn


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
                                 moderation_terms=fx.moderation_terms,
                                 max_containers=config.max_containers)
        self.idempotency_ttl = config.idempotency_ttl
        # Orgs come from the fixtures only; each has its own deadline index.
        self.due = jobs.DueSweeper([o["id"] for o in fx.data["orgs"]])
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

    async def rate_limit(self, principal: Principal, rate_class: str | None) -> None:
        """D13: take a token from the key's bucket for the class; RateLimited when empty.

        One store transaction, only for a key on a tier (none by default)."""
        tier = ratelimit.tier_for(principal.rate_tier, self.config.rate_limits, self.rate_tiers)
        if tier is None or rate_class is None or rate_class not in tier.per_minute:
            return
        wait = await self.store.transact(lambda tx: ratelimit.take(
            tx, principal.key_id, rate_class, tier, self.clock.now_in(tx)))
        if wait is not None:
            raise ratelimit.RateLimited(rate_class, wait)

    def call(self, tx: Tx, operation_id: str, operation: Callable[..., Reply],
             principal: Principal, *, fail_job: bool = False, **params: Any) -> Reply:
        """Run one operation inside the caller's transaction; raises ApiError on refusal."""
        ctx = Ctx(principal=principal, now=self.clock.now_in(tx), settings=self.settings,
                  fail_job=fail_job)
        # Jobs end whether or not anyone reads them (jobs.settle_due), in this same transaction.
        starts = operation_id in operations.READS_BALANCE  # also the operations starting jobs
        self.due.run_in(tx, ctx.now, principal.org_id, exact=starts)
        if not starts:
            return operation(tx, ctx, **params)
        with self.due.watching(principal.org_id):
            return operation(tx, ctx, **params)

    def execute(self, operation_id: str, principal: Principal, *, fail_job: bool = False,
                **params: Any) -> Reply:
        """One operation in a transaction of its own (for tools and the domain's tests)."""
        fn = domain_function(operation_id)
        return self.store.atomic(
            lambda tx: self.call(tx, operation_id, fn, principal, fail_job=fail_job, **params))
