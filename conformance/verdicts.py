"""The verdicts (D10), pinned by name, and how a rule's verdict follows from its checks'.

A check ends `passed`, `failed` (the target broke the rule), `not run` (an input is missing),
`inconclusive` (the kit could not observe enough, or the target refused the setup for its own
reasons), `waived` (`--waive FILE`) or `error` (the kit itself failed). Only `failed` makes
exit status 1.

Exit status: 1 when a check failed (the target broke the contract); else 2 when the run could
not judge (a request got no answer: refused, reset, timed out, refused by TLS), or when a check
ended with a verdict `--fail-on` names; else 0.

A rule is `passed` only when every one of its checks ran and passed; `failed` when any failed;
`not run` or `waived` when all were; `inconclusive` when none passed and some could not judge;
`partial` otherwise (some passed, others did not run, were waived or could not judge).
"""

from __future__ import annotations

from collections.abc import Iterable

PASSED, FAILED, NOT_RUN = "passed", "failed", "not run"
INCONCLUSIVE, WAIVED, ERROR = "inconclusive", "waived", "error"
PARTIAL = "partial"
VERDICTS = (PASSED, FAILED, NOT_RUN, INCONCLUSIVE, WAIVED, ERROR)
# `--fail-on` names the verdicts as words without spaces.
FAIL_ON_NAMES = {"failed": FAILED, "error": ERROR, "inconclusive": INCONCLUSIVE,
                 "not-run": NOT_RUN, "waived": WAIVED}
MARK = {PASSED: "✓", FAILED: "✗", NOT_RUN: "-", INCONCLUSIVE: "?", WAIVED: "w", ERROR: "!",
        PARTIAL: "~"}


def rule_verdict(statuses: Iterable[str]) -> str:
    s = list(statuses)
    if not s:
        return NOT_RUN
    if FAILED in s:
        return FAILED
    if all(v == PASSED for v in s):
        return PASSED
    for only in (NOT_RUN, WAIVED):
        if all(v == only for v in s):
            return only
    if PASSED not in s and any(v in (INCONCLUSIVE, ERROR) for v in s):
        return INCONCLUSIVE
    return PARTIAL
