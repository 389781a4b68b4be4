"""Where the contract lives at run time, a parsed copy of it, and the one `$ref` resolver.

The root `openapi.yaml` is the source; an installed package carries a copy made at build time.
Every reader of the contract (the mock, the kit, the proxy) loads it here, once per process;
`operations.py` builds the operation table on it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

_PACKAGED = Path(__file__).parent / "openapi.yaml"
_SOURCE = Path(__file__).parent.parent / "openapi.yaml"


def spec_path() -> Path:
    """The contract file: the source tree's root file when present, else the packaged copy."""
    for candidate in (_SOURCE, _PACKAGED):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("openapi.yaml is neither in the source tree nor in the package")


@functools.cache
def load_spec() -> dict[str, Any]:
    """The parsed contract (cached: it is read once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster at start
    with spec_path().open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


def resolve(node: Any, root: dict[str, Any] | None = None) -> Any:
    """Follow local `$ref`s until a real node (the spec uses only local references), in `root`
    (the packaged contract by default; another document such as the mock's control API's)."""
    root = load_spec() if root is None else root
    while isinstance(node, dict) and "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def inline(node: Any, root: dict[str, Any] | None = None) -> Any:
    """A copy of `node` with every local `$ref` replaced by its target (for compiling schemas).

    The spec's schemas are not recursive, so the copy is finite.
    """
    root = load_spec() if root is None else root
    node = resolve(node, root)
    if isinstance(node, dict):
        return {k: inline(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, root) for v in node]
    return copy.copy(node)


@functools.cache
def _documented_error_details() -> dict[str, dict[str, Any]]:
    """Error code -> the `details` of its first example, for codes whose schema requires them."""
    required = set()
    for schema in load_spec()["components"]["schemas"].values():
        codes = resolve(schema.get("properties", {}).get("code", {})).get("enum", [])
        if len(codes) == 1 and "details" in schema.get("required", []):
            required.add(codes[0])
    found: dict[str, dict[str, Any]] = {}
    for response in load_spec()["components"]["responses"].values():
        media = resolve(response).get("content", {}).get("application/json", {})
        values = [media["example"]] if "example" in media else []
        values += [resolve(ex)["value"] for ex in (media.get("examples") or {}).values()]
        for value in values:
            error = value.get("error") if isinstance(value, dict) else None
            if isinstance(error, dict) and error.get("code") in required and "details" in error:
                found.setdefault(error["code"], error["details"])
    return found


def documented_error_details(code: str) -> dict[str, Any] | None:
    """The example `details` of an error code, for errors forced without a real cause.

    `Prefer: error=BILLING_EXHAUSTED` and injected faults have no real cost or field to report,
    but the contract requires `details` for some codes (a generated client reads
    `details.cost` as an int): they carry the documented example's, so they stay valid.
    """
    details = _documented_error_details().get(code)
    return copy.deepcopy(details) if details is not None else None
