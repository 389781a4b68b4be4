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


def foreign_key(client: Client, target: Target) -> str | None:
    """Why the client's key cannot stand in for --api-key (an --extra-api-key), or None: it
    must see --project-id, or the first --container-id, as --api-key does (a key of another
    org gets 404), or the checks spread over it would fail on containers it cannot see."""
    path = (_policy_path(target.project_id) if target.project_id else
            f"/v1/content/{target.container_ids[0]}" if target.container_ids else None)
    if path is None:
        return None
    status = client.request("GET", path, validate=False).status_code
    if status == 200:
        return None
    what = "--project-id" if target.project_id else "--container-id"
    return f"the target answers {status} to it for {what} (a key of --api-key's org with " \
           "every scope is needed)"


def _policy_path(project_id: str) -> str:
    return f"/v1/projects/{project_id}/content-review-policy"


def save_shared_state(client: Client, target: Target) -> Saved:
    """The project's review policy (with --project-id); raises Refused when --project-id (or
    --policy-project-id) is not a project of --api-key's organization."""
    if not target.project_id:
        return Saved()
    if target.policy_apart:  # the policy checks' own project must be readable too
        r = client.request("GET", _policy_path(target.policy_project_id), validate=False)
        if r.status_code == 404:
            raise Refused(f"--policy-project-id {target.policy_project_id} is not a project "
                          "of --api-key's organization (404)")
    r = client.request("GET", _policy_path(target.project_id), validate=False)
    if r.status_code == 404:
        raise Refused(f"--project-id {target.project_id} is not a project of --api-key's "
                      "organization (404)")
    if r.status_code == 200:
        return Saved(state={k: v for k, v in r.json().items() if k in _POLICY_FIELDS})
    return Saved(problems={
        "policy": f"the project's review policy could not be read ({r.status_code})"})


def restore_shared_state(client: Client, target: Target, state: Any) -> None:
    """Put back the review policy `save_shared_state` read, if it changed."""
    path = _policy_path(target.project_id)
    now = client.request("GET", path, validate=False)
    if now.status_code == 200 and {k: v for k, v in now.json().items()
                                   if k in state} != state:
        client.request("PATCH", path, json=state, validate=False)
