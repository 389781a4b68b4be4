"""`--mock`: start the bundled layers-mock on a free loopback port and describe it as a Target.

The mock is a separate process (as any target is), started by the mock's own launcher
(`mock.launcher`); its fixtures say which keys and ids unlock which checks, so nothing here is
tuned to the mock's behaviour. This module is the kit's one door to the mock: nothing else of
the kit imports it (the pytest plugin's `layers_mock` fixture apart).
"""

from __future__ import annotations

from typing import Any

from layers_kit.conformance.options import resolve
from layers_kit.conformance.target import Target
from layers_kit.mock.launcher import RunningMock, start_mock

__all__ = ["ALL_SCOPES", "MOCK_ARGS", "MOCK_OVERRIDES", "RunningMock", "door_values",
           "start_mock", "target_for"]

# Stages long enough that steady polling (MOCK_OVERRIDES' poll_interval) sees each one.
MOCK_ARGS = ("--stage-seconds", "0.1")
# The bundled mock overrides these defaults of the options model (options.py, where each
# default lives): its stages last 0.1 s (MOCK_ARGS), so the kit polls every 0.08 s at first
# to see each one, gives up on a job sooner, and runs more checks at once against a local
# process. An option given on the command line still wins.
MOCK_OVERRIDES: dict[str, Any] = {"poll_interval": 0.08, "job_timeout": 60.0, "jobs": 8}
ALL_SCOPES = {"content:read", "content:write", "content:approve", "jobs:read", "jobs:cancel",
              "publish:read", "publish:write"}


def door_values(url: str) -> dict[str, Any]:
    """The option values of the bundled mock at `url`: every key and id its fixtures offer,
    and MOCK_OVERRIDES."""
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
    # a second project of the org for the checks that change the review policy
    policy_project = next((p for p in projects if p["org"] == main["org"]
                           and p["id"] != project["id"]), None)
    other_project = next((p for p in projects if other and p["org"] == other["org"]), None)
    broke_project_ids = {p["id"] for p in projects if broke and p["org"] == broke["org"]}
    broke_container = next((c for c in fx.get("containers") or []
                            if c["project"] in broke_project_ids), None)
    terms = (fx.get("moderation") or {}).get("terms") or ["moderation-test-block"]
    return dict(
        base_url=url, api_key=main["key"], readonly_key=readonly and readonly["key"],
        other_org_key=other and other["key"],
        other_project_id=other_project and other_project["id"],
        broke_key=broke and broke["key"],
        broke_container_id=broke_container and broke_container["id"],
        moderation_text=f"A brief that mentions {terms[0]}", project_id=project["id"],
        policy_project_id=policy_project and policy_project["id"],
        **MOCK_OVERRIDES,
    )


def target_for(url: str, **overrides: Any) -> Target:
    """A Target using every key and id the bundled fixtures offer (`overrides`: any option of
    the kit, e.g. max_wait=30). The environment's keys are not read: the mock brings its own."""
    return resolve(overrides, door=door_values(url)).target()
