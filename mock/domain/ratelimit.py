"""Rate limits (D13): a token bucket per API key and endpoint class, refilled continuously.

A tier gives each class (`read`, `light_write`, `job_start`) a number of requests per minute;
the bucket holds that many tokens at most and gains `per_minute / 60` tokens a second, so a
client may burst up to the limit and then goes at the steady rate. A bucket is a document in
the store (shared by every worker) that is topped up lazily when read, from the time the clock
gives: the manual clock refills buckets exactly as it moves jobs, and nothing runs in the
background.

Pure Python: no HTTP here. The service runs `take` in a store transaction after
authentication and raises `RateLimited`, which the web layer answers as the D5 429 with
`Retry-After`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from layers_kit.mock.domain.errors import ApiError
from layers_kit.mock.store.base import Tx

KIND = "bucket"
OFF = "off"


@dataclass(frozen=True)
class Tier:
    name: str
    per_minute: dict[str, int]  # endpoint class -> requests per minute


class RateLimited(ApiError):
    code = "RATE_LIMITED"

    def __init__(self, rate_class: str, retry_after: int) -> None:
        super().__init__(
            f"Too many {rate_class} requests for this API key; retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)})


def tiers(data: dict[str, Any]) -> dict[str, Tier]:
    """The fixtures' `rateLimits.tiers`: name -> Tier."""
    raw = (data.get("rateLimits") or {}).get("tiers") or {}
    return {name: Tier(name, {cls: int(n) for cls, n in limits.items()})
            for name, limits in raw.items()}


def tier_for(key_tier: str | None, default: str, known: dict[str, Tier]) -> Tier | None:
    """A key's own tier wins (the limited key is always limited); else the mock's setting."""
    name = key_tier or default
    return None if name == OFF else known[name]


def refill(bucket: dict[str, float] | None, capacity: int, now: float) -> float:
    """Tokens in the bucket at `now` (a new bucket is full; time never runs backwards)."""
    if bucket is None:
        return float(capacity)
    elapsed = max(0.0, now - bucket["at"])
    return min(float(capacity), bucket["tokens"] + elapsed * capacity / 60.0)


def take(tx: Tx, key_id: str, rate_class: str, tier: Tier, now: float) -> int | None:
    """Take one token; None when granted (or the class is unlimited), else the whole seconds
    until a token is back."""
    per_minute = tier.per_minute.get(rate_class)
    if not per_minute:
        return None
    doc_key = f"{key_id}:{rate_class}"
    tokens = refill(tx.get(KIND, doc_key), per_minute, now)
    if tokens >= 1.0 - 1e-9:  # a client that waited exactly Retry-After gets its token
        tx.put(KIND, doc_key, {"tokens": max(0.0, tokens - 1.0), "at": now})
        return None
    # Not written: a refused request costs nothing and the bucket keeps refilling.
    return max(1, math.ceil((1.0 - tokens) * 60.0 / per_minute - 1e-9))
