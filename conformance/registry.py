"""Checks as plain functions in a registry, each named for the rule it proves.

    @check("R3", "Only the new assets are listed after completion", needs=("containers",))
    def r3_only_new_assets(ctx): ...

A check raises `Violation` when the target breaks the rule, `NotRunnable` when it lacks an
input, `Inconclusive` when it could not judge; returning normally means the rule held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# What a check may need, and the option that provides it.
NEEDS: dict[str, str] = {
    "containers": "--project-id or --container-id",
    "project": "--project-id",
    "readonly": "--readonly-key",
    "other_org": "--other-org-key and --other-project-id",
    "broke": "--broke-key and --broke-container-id",
    "moderation": "--moderation-text",
    "approve": "an --api-key with the content:approve scope",
}


@dataclass(frozen=True)
class Check:
    rule: str
    title: str
    fn: Callable
    needs: tuple[str, ...] = ()
    # changes shared state (the project's policy): runs alone, or in --policy-project-id
    exclusive: bool = False
    judge: bool = False  # judges what the whole run saw (D5, the spec): runs last
    # needs requests to reach the target at once or right after each other (duplicates sent
    # together; a second regenerate while the first job runs), which a throttled rate-limit
    # bucket would spread out: starts first, while the target's buckets are still full
    burst: bool = False

    @property
    def name(self) -> str:
        return self.fn.__name__


CHECKS: list[Check] = []


def check(rule: str, title: str, *, needs: tuple[str, ...] = (),
          exclusive: bool = False, judge: bool = False, burst: bool = False) -> Callable:
    def register(fn: Callable) -> Callable:
        CHECKS.append(Check(rule, title, fn, needs, exclusive=exclusive, judge=judge,
                            burst=burst))
        return fn

    return register


def all_checks() -> list[Check]:
    import layers_kit.conformance.checks  # noqa: F401 - registers the checks

    return list(CHECKS)
