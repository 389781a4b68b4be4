"""The bundled fixtures with more keys of the main org (what a team gives --extra-api-key),
for the tests and `bench/kit_pace.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from layers_kit.conformance.bundled import ALL_SCOPES
from layers_kit.mock.domain.fixtures import load
from tests.support.ids import FULL


def with_main_org_keys(keys: tuple[str, ...] | list[str], data: dict[str, Any] | None = None,
                       prefix: str = "key_extra") -> dict[str, Any]:
    """`data` (default: the bundled fixtures) with `keys` added to the org of lp_test_full,
    each with every scope; their ids are `prefix` and a number."""
    data = load().data if data is None else data
    org = next(k for k in data["keys"] if k["key"] == FULL)["org"]
    data["keys"] += [{"key": key, "id": f"{prefix}_{i}", "org": org,
                      "scopes": sorted(ALL_SCOPES)} for i, key in enumerate(keys, 1)]
    return data


def write_fixtures(path: Path, keys: tuple[str, ...] | list[str],
                   prefix: str = "key_extra") -> Path:
    """The bundled fixtures with `keys` (with_main_org_keys), written to `path` for
    `layers-mock --fixtures`."""
    path.write_text(yaml.safe_dump(with_main_org_keys(keys, prefix=prefix)), encoding="utf-8")
    return path
