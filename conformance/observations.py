"""What the whole run saw, shared by every check's client: one home for the facts that belong
to no single check.

- D5: every error response, and the ones whose envelope breaks D5 (judged by the D5 check);
- openapi-core breaches of the spec (judged by the `schema_responses` check, rule SCHEMA);
- coverage: operation x status observed;
- spend: containers, jobs and credits a run consumes, and scheduled posts it leaves (D9 prices);
- created: the ids of what the run created on the target (containers, jobs, scheduled posts),
  which every report lists so that an owner can clean up.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from layers_kit.conformance.failures import Exchange

# D9 prices as the spec's descriptions of regenerateContent and generateContent state them.
REGENERATE_COST, PRESERVE_COST = 120, 10
GENERATE_COST = {"slideshow_remix": 50}
GENERATE_DEFAULT_COST = 120


@dataclass
class Breach:
    message: str
    exchange: Exchange
    check: str


@dataclass
class Spend:
    containers: int = 0
    job_starts: int = 0
    credits_reserved: int = 0
    scheduled_posts: int = 0
    policy_changes: int = 0
    by_source: Counter = field(default_factory=Counter)

    def add(self, other: Spend) -> None:
        self.containers += other.containers
        self.job_starts += other.job_starts
        self.credits_reserved += other.credits_reserved
        self.scheduled_posts += other.scheduled_posts
        self.policy_changes += other.policy_changes
        self.by_source.update(other.by_source)

    def as_dict(self) -> dict[str, Any]:
        return {"containers": self.containers, "jobStarts": self.job_starts,
                "creditsReserved": self.credits_reserved,
                "scheduledPosts": self.scheduled_posts,
                "reviewPolicyChanges": self.policy_changes,
                "jobStartsBySource": dict(self.by_source)}

    def line(self) -> str:
        return (f"{self.containers} containers created, {self.job_starts} jobs started, "
                f"{self.credits_reserved} credits reserved (released again for canceled and "
                f"failed jobs), {self.scheduled_posts} scheduled post(s) left on the target, "
                f"review policy changed {self.policy_changes} time(s) and restored")


def job_cost(operation: str, body: Any) -> int:
    body = body if isinstance(body, dict) else {}
    if operation == "regenerateContent":
        return PRESERVE_COST if body.get("preserveAssets") else REGENERATE_COST
    variants = body.get("variantCount") or 1
    return GENERATE_COST.get(body.get("format"), GENERATE_DEFAULT_COST) * int(variants)


CREATED_LIMIT = 10_000  # ids kept per kind (a run creates a few hundred)


def created_by(operation: str | None, status: int | None, response_body: str | None,
               replayed: bool) -> dict[str, list[str]]:
    """The ids one exchange created: a job start's job (and generate's containers), a
    schedule's post. A replay created nothing."""
    if status not in (201, 202) or replayed or not response_body:
        return {}
    try:
        body = json.loads(response_body)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    out: dict[str, list[str]] = {}
    if operation in ("regenerateContent", "generateContent") and status == 202:
        if isinstance(body.get("jobId"), str):
            out["jobs"] = [body["jobId"]]
        if operation == "generateContent":
            ids = body.get("containerIds") or [body.get("containerId")]
            out["containers"] = [i for i in ids if isinstance(i, str)]
    elif operation == "scheduleContent" and status == 201 and isinstance(body.get("id"), str):
        out["scheduledPosts"] = [body["id"]]
    return out


def spend_of(operation: str | None, method: str, status: int | None, request_body: str | None,
             response_body: str | None, replayed: bool, source: str) -> Spend:
    """What one exchange consumed on the target."""
    s = Spend()
    if status is None or replayed or status >= 300:
        return s
    if operation in ("regenerateContent", "generateContent") and status == 202:
        try:
            req = json.loads(request_body) if request_body else {}
        except ValueError:
            req = {}
        s.job_starts = 1
        s.by_source[source] = 1
        s.credits_reserved = job_cost(operation, req)
        if operation == "generateContent":
            try:
                s.containers = len(json.loads(response_body or "{}").get("containerIds") or
                                   [1])
            except (ValueError, AttributeError):
                s.containers = 1
    elif operation == "scheduleContent" and status == 201:
        s.scheduled_posts = 1
    elif operation == "updateReviewPolicy" and method == "PATCH":
        s.policy_changes = 1
    return s


class Observations:
    """Thread-safe: the checks run in a pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.coverage: Counter[tuple[str, int]] = Counter()
        self.errors_seen = 0
        self.d5_breaches: list[Breach] = []
        self.schema_breaches: list[Breach] = []
        self.server_errors: list[Exchange] = []
        self.spend = Spend()
        self.created: dict[str, list[str]] = {"containers": [], "jobs": [],
                                              "scheduledPosts": []}

    def saw(self, exchange: Exchange, *, replayed: bool, check: str) -> None:
        with self._lock:
            if exchange.operation and exchange.status is not None:
                self.coverage[(exchange.operation, exchange.status)] += 1
            if exchange.status is not None and exchange.status >= 400:
                self.errors_seen += 1
            if exchange.status is not None and exchange.status >= 500:
                self.server_errors.append(exchange)
            self.spend.add(spend_of(exchange.operation, exchange.method, exchange.status,
                                    exchange.request_body, exchange.response_body, replayed,
                                    "checks"))
            for kind, ids in created_by(exchange.operation, exchange.status,
                                        exchange.response_body, replayed).items():
                kept = self.created[kind]
                kept.extend(i for i in ids if len(kept) < CREATED_LIMIT)

    def d5(self, message: str, exchange: Exchange, check: str) -> None:
        with self._lock:
            self.d5_breaches.append(Breach(message, exchange, check))

    def schema(self, message: str, exchange: Exchange, check: str) -> None:
        with self._lock:
            self.schema_breaches.append(Breach(message, exchange, check))

    def breached(self, exchanges: list[Exchange]) -> bool:
        """Did any of these exchanges break the spec (so a check that could not read them
        is inconclusive, and the breach is judged under SCHEMA)?"""
        ids = {id(e) for e in exchanges}
        with self._lock:
            return any(id(b.exchange) in ids for b in self.schema_breaches)
