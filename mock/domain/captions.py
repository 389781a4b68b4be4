"""Caption writing (R4): every generation of a container gets a caption unlike any earlier one."""

from __future__ import annotations

from typing import Any

_OPENERS = ("", "New: ", "Real talk: ", "Quick one: ", "Hot take: ", "Story time: ")


def write(brief: dict[str, Any], earlier: list[str], generation: int) -> str:
    parts = [p.strip().rstrip(".") for p in (brief.get("topic"), brief.get("angle")) if p]
    body = ". ".join(parts) or "Fresh content"
    props = brief.get("valuePropositions") or []
    if props:
        body += " - " + ", ".join(props[:3])
    cta = (brief.get("cta") or "").strip()
    caption = f"{_OPENERS[generation % len(_OPENERS)]}{body}." + (f" {cta}" if cta else "")
    caption += f" #take{generation}"
    n = generation
    while caption in earlier:  # cannot happen with the generation tag, but R4 is a promise
        n += 1
        caption = f"{caption} #v{n}"
    return caption
