"""What the kit is pointed at: the base URL, the keys and the ids that unlock checks (D10).

The checks read a `Target`; its fields are options of the kit, and their defaults are the
model's (options.py), written there once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from layers_kit.conformance.options import DEFAULTS as _D
from layers_kit.conformance.tls import DEFAULT as _DEFAULT_TLS
from layers_kit.conformance.tls import TlsSettings

# The Schemathesis phase's share of the keys: it sent about three of every four job-start
# requests of a default run (254 of 339, bench/README.md "Kit pace").
PHASE_SHARE = 0.75


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str
    extra_api_keys: tuple[str, ...] = _D.extra_api_keys
    readonly_key: str | None = _D.readonly_key
    other_org_key: str | None = _D.other_org_key
    other_project_id: str | None = _D.other_project_id
    broke_key: str | None = _D.broke_key
    broke_container_id: str | None = _D.broke_container_id
    moderation_text: str | None = _D.moderation_text
    project_id: str | None = _D.project_id
    policy_project_id: str | None = _D.policy_project_id
    container_ids: tuple[str, ...] = _D.container_ids
    credits_key: str | None = _D.credits_key
    credits_container_id: str | None = _D.credits_container_id
    job_timeout: float = _D.job_timeout
    poll_interval: float = _D.poll_interval
    request_timeout: float = _D.request_timeout
    max_wait: float = _D.max_wait  # seconds one request may wait on 429/503 Retry-After in all
    tls: TlsSettings = _DEFAULT_TLS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Target:
        """The Python API's way to read keys and ids from the environment (`LAYERS_API_KEY`,
        `LAYERS_BASE_URL`, ...: the variables `layers-conformance run --help` names), as the
        command line and the pytest plugin do; `given` wins over the environment."""
        from layers_kit.conformance import options

        opts = options.resolve(given, os.environ if environ is None else environ)
        if not (opts.base_url and opts.api_key):
            raise ValueError("a target needs a base URL and an API key: give base_url and "
                             "api_key, or set LAYERS_BASE_URL and LAYERS_API_KEY")
        return opts.target()

    @property
    def policy_apart(self) -> bool:
        """Whether the checks that change a review policy have a project of their own
        (--policy-project-id), so that they may run alongside the others."""
        return bool(self.project_id and self.policy_project_id
                    and self.policy_project_id != self.project_id)

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
        return [k for k in (self.api_key, *self.extra_api_keys, self.readonly_key,
                            self.other_org_key, self.broke_key, self.credits_key) if k]

    @property
    def keys(self) -> tuple[str, ...]:
        """--api-key and each --extra-api-key, once each (a key given twice has one set of
        buckets), --api-key first."""
        return tuple(dict.fromkeys(k for k in (self.api_key, *self.extra_api_keys) if k))

    def key_shares(self, phase: bool = True) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The keys of the checks and those of the Schemathesis phase: with one key, both use
        it; with more (--extra-api-key), the phase gets PHASE_SHARE of them, at least one,
        and the checks the rest, the --api-key first. The two never share a key then, so
        neither waits on the other's rate-limit buckets. Without a phase (`phase` False), the
        checks have them all."""
        keys = self.keys
        if len(keys) == 1 or not phase:
            return keys, keys
        phase = min(len(keys) - 1, max(1, round(len(keys) * PHASE_SHARE)))
        return keys[:len(keys) - phase], keys[len(keys) - phase:]

