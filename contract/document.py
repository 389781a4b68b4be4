"""A contract document loaded from YAML or JSON, with what the diff and publish steps ask of it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ContractError(Exception):
    """A document that cannot be read as an OpenAPI contract (exit 2 on the command line)."""


@dataclass
class Document:
    data: dict[str, Any]
    source: str

    @property
    def version(self) -> str:
        return str(self.data.get("info", {}).get("version", ""))

    @property
    def major(self) -> int:
        return major_of(self.version)

    def resolve(self, ref: str) -> Any:
        """The target of a local `$ref` (`#/components/...`); other refs are refused."""
        if not ref.startswith("#/"):
            raise ContractError(f"{self.source}: only local references are supported, not {ref!r}")
        node: Any = self.data
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[part]
            except (KeyError, TypeError):
                raise ContractError(f"{self.source}: unresolvable reference {ref!r}") from None
        return node

    def deref(self, node: Any) -> Any:
        """Follow `$ref`s of a non-schema object (parameter, response, header, body)."""
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            if node["$ref"] in seen:
                raise ContractError(f"{self.source}: circular reference {node['$ref']!r}")
            seen.add(node["$ref"])
            node = self.resolve(node["$ref"])
        return node

    def operations(self) -> dict[tuple[str, str], tuple[str, dict[str, Any], dict[str, Any]]]:
        """(template key, method) -> (path as written, path item, operation)."""
        out = {}
        for path, item in (self.data.get("paths") or {}).items():
            item = self.deref(item)
            for method in METHODS:
                if isinstance(item.get(method), dict):
                    out[(template_key(path), method)] = (path, item, item[method])
        return out


def template_key(path: str) -> str:
    """`/v1/content/{containerId}` and `/v1/content/{id}` are one URL: name no parameter."""
    return re.sub(r"\{[^}/]+\}", "{}", path)


def major_of(version: str) -> int:
    match = re.match(r"\s*v?(\d+)", version)
    if not match:
        raise ContractError(f"info.version {version!r} does not start with a major number")
    return int(match.group(1))


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) from its unescaped parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def load(path: str | Path) -> Document:
    """A contract from a YAML or JSON file (JSON is YAML, so one parser reads both)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ContractError(f"cannot read {path}: {err.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_LOADER)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ContractError(f"{path} is neither YAML nor JSON: {err}") from None
    if not isinstance(data, dict) or "openapi" not in data or "paths" not in data:
        raise ContractError(f"{path} is not an OpenAPI document (no openapi or paths)")
    return Document(data, str(path))


def external_refs(node: Any) -> list[str]:
    """Every `$ref` that leaves the document (a bundled contract has none)."""
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            found.append(ref)
        for value in node.values():
            found.extend(external_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(external_refs(value))
    return found
