"""Fixtures (D9): orgs, keys, projects and containers from a YAML file, seeded into the store.

A broken fixture file stops the start with a message naming what is wrong, never a later
request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from layers_kit.mock.domain import assets, captions, ids, jobs, review, tenancy
from layers_kit.mock.domain.clock import iso
from layers_kit.mock.domain.moderation import DEFAULT_TERMS
from layers_kit.mock.domain.operations import new_container
from layers_kit.mock.store.base import Store

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "fixtures.yaml"


class FixtureError(ValueError):
    pass


@dataclass(frozen=True)
class Fixtures:
    path: Path
    data: dict[str, Any]

    @property
    def keys(self) -> list[dict[str, Any]]:
        return self.data["keys"]

    @property
    def moderation_terms(self) -> tuple[str, ...]:
        return tuple(self.data.get("moderation", {}).get("terms") or DEFAULT_TERMS)


def load(path: Path | str | None = None) -> Fixtures:
    path = Path(path) if path else DEFAULT_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FixtureError(f"cannot read fixtures {path}: {exc}") from exc
    _check(data, path)
    return Fixtures(path, data)


def _check(data: Any, path: Path) -> None:
    def fail(msg: str) -> None:
        raise FixtureError(f"{path}: {msg}")

    if not isinstance(data, dict):
        fail("the file must be a mapping with orgs, keys, projects and containers")
    for section in ("orgs", "keys", "projects"):
        if not isinstance(data.get(section), list) or not data[section]:
            fail(f"'{section}' must be a non-empty list")
    orgs = {o.get("id") for o in data["orgs"]}
    for o in data["orgs"]:
        if not str(o.get("id", "")).startswith("org_") or not isinstance(o.get("credits"), int):
            fail(f"org {o!r} needs an id 'org_...' and integer credits")
    tiers = (data.get("rateLimits") or {}).get("tiers") or {}
    if not isinstance(tiers, dict) or "off" in tiers:
        fail("rateLimits.tiers must map tier names (not 'off') to per-minute limits")
    for name, limits in tiers.items():
        if not isinstance(limits, dict) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n > 0
                for n in limits.values()):
            fail(f"rate limit tier {name!r} must map endpoint classes to positive integers")
    for k in data["keys"]:
        if not k.get("key") or not k.get("id") or k.get("org") not in orgs:
            fail(f"key {k.get('id')!r} needs key, id and a known org")
        if k.get("rateLimitTier") is not None and k["rateLimitTier"] not in tiers:
            fail(f"key {k['id']!r}: unknown rateLimitTier {k['rateLimitTier']!r}")
    projects = {}
    for p in data["projects"]:
        if p.get("org") not in orgs or not str(p.get("id", "")).startswith("prj_"):
            fail(f"project {p.get('id')!r} needs an id 'prj_...' and a known org")
        if p.get("policy", "auto_approve") not in ("auto_approve", "review_all", "review_first_n"):
            fail(f"project {p['id']}: unknown policy {p.get('policy')!r}")
        projects[p["id"]] = p
    for c in data.get("containers") or []:
        if ids.canonical_container_id(str(c.get("id", ""))) != c.get("id"):
            fail(f"container {c.get('id')!r}: the id must be 'cnt_' and a lower-case UUID v4")
        if c.get("project") not in projects:
            fail(f"container {c['id']}: unknown project {c.get('project')!r}")
        if not isinstance(c.get("brief"), dict) or not c["brief"].get("topic"):
            fail(f"container {c['id']}: needs a brief with a topic")


def seed(store: Store, fx: Fixtures, now: float) -> None:
    """Clear the store and write the fixtures' state (used at start and by /__mock/reset)."""
    store.clear()
    at = iso(now)

    def write(tx) -> None:
        for o in fx.data["orgs"]:
            tx.put("org", o["id"], {"id": o["id"], "name": o.get("name", o["id"]),
                                    "available": o["credits"], "reserved": 0, "spent": 0})
        for p in fx.data["projects"]:
            policy = {"policy": p.get("policy", "auto_approve"), "updatedAt": at, "usedN": 0}
            if policy["policy"] == "review_first_n":
                policy["firstN"] = int(p.get("firstN", 1))
            tx.put("project", p["id"], {"id": p["id"], "orgId": p["org"], "policy": policy})
        for spec in fx.data.get("containers") or []:
            _seed_container(tx, spec, now, at)

    store.atomic(write)


def _seed_container(tx, spec: dict[str, Any], now: float, at: str) -> None:
    project = tx.get("project", spec["project"])
    brief = {"topic": None, "angle": None, "cta": None, "valuePropositions": [], **spec["brief"]}
    refs = {"sourcePostIds": [], "assetIds": [], **(spec.get("references") or {})}
    c = new_container(spec["id"], project, spec.get("format", "video_remix"), brief, refs, at,
                      status="completed", job_id=None)
    c["generation"] = 1
    c["caption"] = captions.write(brief, [], 1)
    c["captions"] = [c["caption"]]
    c["assetIds"] = assets.create_for(tx, c, at)
    review.set_approval(tx, c, spec.get("approval", "not_required"))
    c["completedAt"] = at
    if c["approvalStatus"] == "approved":
        c["approvedAt"], c["approvedBy"] = at, "fixtures"
    if spec.get("scheduledFor"):
        post = {"id": ids.uuid_id("sp"), "orgId": project["orgId"], "containerId": c["id"],
                "status": "scheduled", "scheduledFor": spec["scheduledFor"],
                "caption": c["caption"], "createdAt": at}
        tx.put("post", post["id"], post)
        c["scheduledPostIds"].append(post["id"])
    if spec.get("running"):
        job = jobs.start(tx, job_id=ids.job_id(), kind="content_regenerate",
                         org_id=project["orgId"], project_id=project["id"],
                         container_ids=[c["id"]], now=now,
                         stage_seconds=float(spec.get("stageSeconds", 3600)), fail=False,
                         cost=0, pending={"brief": None, "references": None,
                                          "preserveAssets": False})
        c["currentJobId"] = job["jobId"]
        c["status"] = "generating"
    tenancy.put_container(tx, c)
