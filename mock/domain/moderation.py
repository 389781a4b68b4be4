"""The brief safety check (D9): any brief text containing a blocked term is refused."""

from __future__ import annotations

from typing import Any

from layers_kit.mock.domain.errors import ModerationBlocked

DEFAULT_TERMS = ("moderation-test-block",)


def check_brief(brief: dict[str, Any] | None, terms: tuple[str, ...]) -> None:
    """R12: raise MODERATION_BLOCKED naming the brief fields that carry a blocked term."""
    if not brief:
        return
    lowered = tuple(t.lower() for t in terms)
    hits = []
    for field, value in brief.items():
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and any(term in t.lower() for term in lowered) for t in texts):
            hits.append(f"brief.{field}")
    if hits:
        raise ModerationBlocked(hits)
