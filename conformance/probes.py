"""What the runner needs to ask of the API, kept on the checks' side: the runner stays generic.

The runner knows clients, keys and needs; these functions know the paths and what their answers
mean:

- `key_refused`: does the target refuse a client's key? A GET of content that cannot exist
  (a fresh id): 404 for an accepted key, 401 for a refused one; it changes nothing.
- `save_shared_state` / `restore_shared_state`: the state of the target that the checks that
  run alone, and Schemathesis, may change (the project's content-review policy, R7): read
  before the run, put back after Schemathesis as the team had it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from layers_kit.conformance.client import Client
from layers_kit.conformance.target import Target

# The fields of the review policy that say what it is (the rest describes it).
_POLICY_FIELDS = ("policy", "firstN")


class Refused(Exception):
    """The target refuses an input the whole run depends on: a usage error (the message says
    which)."""


@dataclass
class Saved:
    """What `save_shared_state` read: the state to restore (None: nothing), and why a need
    cannot be met (need -> reason, as the runner's preflight problems)."""

    state: Any = None
    problems: dict[str, str] = field(default_factory=dict)


def key_refused(client: Client) -> bool:
    """True when the target answers 401 to the client's key."""
    return client.request("GET", f"/v1/content/cnt_{uuid.uuid4()}",
                          validate=False).status_code == 401


# The job id of `stand_in_probes`: the contract's pattern, and no job has it.
_NO_JOB = "job_" + "0" * 26


def stand_in_probes(target: Target) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Requests whose answers tell whether a key can stand in for --api-key (an
    --extra-api-key): the projects (and without one the first container) the checks use, and a
    request per scope a check needs (content:write, content:approve, publish:write,
    jobs:cancel) on a container or job that does not exist, so that nothing changes on the
    target. As (operationId, method, path, request keywords)."""
    from layers_kit.conformance.client import new_key
    from layers_kit.conformance.schema_phase import future_date

    probes = [("getReviewPolicy", "GET", policy_path(p), {})
              for p in (target.project_id, target.policy_project_id if target.policy_apart
                        else None) if p]
    if not target.project_id and target.container_ids:
        probes.append(("getContent", "GET", f"/v1/content/{target.container_ids[0]}", {}))
    missing = f"/v1/content/cnt_{uuid.uuid4()}"
    for op, path, body in (("regenerateContent", f"{missing}/regenerate", {}),
                           ("approveContent", f"{missing}/approve", {}),
                           ("scheduleContent", f"{missing}/schedule",
                            {"scheduledFor": future_date()}),
                           ("cancelJob", f"/v1/jobs/{_NO_JOB}/cancel", None)):
        kw: dict[str, Any] = {"headers": {"Idempotency-Key": new_key()}}
        if body is not None:
            kw["json"] = body
        probes.append((op, "POST", path, kw))
    return probes


def answers(client: Client, probes: list[tuple[str, str, str, dict[str, Any]]]) -> list[int]:
    """The status of each of `probes` for the client's key."""
    return [client.request(method, path, validate=False, **kw).status_code
            for _, method, path, kw in probes]


def stand_in_problem(probes: list[tuple[str, str, str, dict[str, Any]]], expected: list[int],
                     client: Client) -> str | None:
    """Why the client's key cannot stand in for --api-key, or None: it must get the answers
    --api-key got (`expected`) to `probes`. A key of another org gets 404 for the projects, a
    key without a scope 403; the checks spread over such a key would fail on its refusals."""
    for (op, _, _, _), want, got in zip(probes, expected, answers(client, probes),
                                        strict=True):
        if got != want:
            return (f"{op} answers {got} to it and {want} to --api-key (a key of --api-key's "
                    "org with every scope is needed)")
    return None


def policy_path(project_id: str) -> str:
    return f"/v1/projects/{project_id}/content-review-policy"


def save_shared_state(client: Client, target: Target) -> Saved:
    """The project's review policy (with --project-id); raises Refused when --project-id (or
    --policy-project-id) is not a project of --api-key's organization."""
    if not target.project_id:
        return Saved()
    if target.policy_apart:  # the policy checks' own project must be readable too
        r = client.request("GET", policy_path(target.policy_project_id), validate=False)
        if r.status_code != 200:
            raise Refused(f"--policy-project-id {target.policy_project_id} is not a project "
                          f"of --api-key's organization whose review policy it may read "
                          f"({r.status_code})")
    r = client.request("GET", policy_path(target.project_id), validate=False)
    if r.status_code == 404:
        raise Refused(f"--project-id {target.project_id} is not a project of --api-key's "
                      "organization (404)")
    if r.status_code == 200:
        return Saved(state={k: v for k, v in r.json().items() if k in _POLICY_FIELDS})
    return Saved(problems={
        "policy": f"the project's review policy could not be read ({r.status_code})"})


def restore_shared_state(client: Client, target: Target, state: Any) -> None:
    """Put back the review policy `save_shared_state` read, if it changed."""
    path = policy_path(target.project_id)
    now = client.request("GET", path, validate=False)
    if now.status_code == 200 and {k: v for k, v in now.json().items()
                                   if k in state} != state:
        client.request("PATCH", path, json=state, validate=False)
