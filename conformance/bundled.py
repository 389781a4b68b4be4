"""`--mock`: start the bundled layers-mock on a free loopback port and describe it as a Target.

The mock is a separate process (as any target is), started by the mock's own launcher
(`mock.launcher`); its fixtures say which keys and ids unlock which checks, so nothing here is
tuned to the mock's behaviour.
"""

from __future__ import annotations

from layers_kit.conformance.target import Target
from layers_kit.mock.launcher import RunningMock, start_mock

__all__ = ["ALL_SCOPES", "MOCK_ARGS", "RunningMock", "start_mock", "target_for"]

# Stages long enough that steady polling (target_for's poll_interval) sees each one.
MOCK_ARGS = ("--stage-seconds", "0.1")
ALL_SCOPES = {"content:read", "content:write", "content:approve", "jobs:read", "jobs:cancel",
              "publish:read", "publish:write"}


def target_for(url: str, **overrides) -> Target:
    """A Target using every key and id the bundled fixtures offer."""
    from layers_kit.mock.domain.fixtures import load

    fx = load().data
    credits = {o["id"]: o["credits"] for o in fx["orgs"]}
    # a key on a rate-limit tier (lp_test_limited) would throttle the kit's own run
    full = [k for k in fx["keys"]
            if set(k["scopes"]) >= ALL_SCOPES and not k.get("rateLimitTier")]
    main = next(k for k in full if credits[k["org"]] > 0)
    readonly = next((k for k in fx["keys"] if k["org"] == main["org"]
                     and "content:write" not in k["scopes"]), None)
    other = next((k for k in full if k["org"] != main["org"] and credits[k["org"]] > 0), None)
    broke = next((k for k in full if credits[k["org"]] == 0), None)
    projects = fx["projects"]
    project = next(p for p in projects if p["org"] == main["org"]
                   and p.get("policy", "auto_approve") == "auto_approve")
    other_project = next((p for p in projects if other and p["org"] == other["org"]), None)
    broke_project_ids = {p["id"] for p in projects if broke and p["org"] == broke["org"]}
    broke_container = next((c for c in fx.get("containers") or []
                            if c["project"] in broke_project_ids), None)
    terms = (fx.get("moderation") or {}).get("terms") or ["moderation-test-block"]
    values = dict(
        base_url=url, api_key=main["key"], readonly_key=readonly and readonly["key"],
        other_org_key=other and other["key"],
        other_project_id=other_project and other_project["id"],
        broke_key=broke and broke["key"],
        broke_container_id=broke_container and broke_container["id"],
        moderation_text=f"A brief that mentions {terms[0]}", project_id=project["id"],
        job_timeout=60.0, poll_interval=0.08,
    )
    values.update(overrides)
    return Target(**values)
