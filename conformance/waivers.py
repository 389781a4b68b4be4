"""`--waive FILE`: known deviations a team accepts for now, reported as `waived` (D10).

    waivers:
      - id: R9                       # a rule id, or a check name such as d7_cancel
        reason: "posts are re-captioned until PLAT-123 ships"
        expires: 2026-12-31          # optional; after it the waiver no longer applies

YAML or JSON (a bare list is accepted too). A waived check is not run. An expired waiver is
ignored and listed, so it cannot hide a failure for good.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import yaml


class WaiverError(ValueError):
    pass


@dataclass(frozen=True)
class Waiver:
    id: str
    reason: str
    expires: dt.date | None = None

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires

    def matches(self, rule: str, name: str) -> bool:
        return self.id.upper() == rule.upper() or self.id == name


def load(path: Path) -> list[Waiver]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise WaiverError(f"--waive {path}: {exc}") from exc
    items = data.get("waivers") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise WaiverError(f"--waive {path}: expected a list under `waivers`")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("id") or not item.get("reason"):
            raise WaiverError(f"--waive {path}: entry {i + 1} needs `id` and `reason`")
        expires = item.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError as exc:
                raise WaiverError(f"--waive {path}: entry {i + 1}: expires {expires!r} is "
                                  "not a date (YYYY-MM-DD)") from exc
        elif isinstance(expires, dt.datetime):
            expires = expires.date()
        elif expires is not None and not isinstance(expires, dt.date):
            raise WaiverError(f"--waive {path}: entry {i + 1}: expires must be a date")
        out.append(Waiver(str(item["id"]), str(item["reason"]), expires))
    return out


def find(waivers: list[Waiver], rule: str, name: str, today: dt.date) -> Waiver | None:
    return next((w for w in waivers if w.active(today) and w.matches(rule, name)), None)
