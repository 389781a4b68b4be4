"""What the kit is pointed at: the base URL, the keys and the ids that unlock checks (D10)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str
    readonly_key: str | None = None
    other_org_key: str | None = None
    other_project_id: str | None = None
    broke_key: str | None = None
    broke_container_id: str | None = None
    moderation_text: str | None = None
    project_id: str | None = None
    container_ids: tuple[str, ...] = field(default_factory=tuple)
    job_timeout: float = 300.0
    poll_interval: float = 0.2
    request_timeout: float = 30.0
    max_wait: float = 120.0  # seconds one request may wait on 429/503 Retry-After in all

    def has(self, need: str) -> bool:
        return {
            "containers": bool(self.project_id or self.container_ids),
            "project": bool(self.project_id),
            "readonly": bool(self.readonly_key),
            "other_org": bool(self.other_org_key and self.other_project_id),
            "broke": bool(self.broke_key and self.broke_container_id),
            "moderation": bool(self.moderation_text),
            "approve": True,
        }[need]

    def secrets(self) -> list[str]:
        return [k for k in (self.api_key, self.readonly_key, self.other_org_key,
                            self.broke_key) if k]
