"""A schema flattened to what a client can rely on: references followed, allOf and oneOf merged.

The diff compares what a client sends and receives, not how the document is written, so a
component renamed, a schema split into `allOf` pieces or a single error schema replaced by a
`oneOf` union of per-code schemas with the same wire shape compares equal to the old one.

- `allOf` intersects: properties merged, `required` united, the tighter bound wins.
- `oneOf`/`anyOf` unite (the union's *merged view*): a property is known when any variant has
  it, required only when every variant requires it, an enum is the union of the variants'
  values, a bound is the loosest. That can miss a break that only shows inside one variant;
  the README says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = object()  # "no default declared" (None is a legitimate default)

LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum")
UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum")
_STRUCTURAL = {
    "$ref", "type", "format", "enum", "nullable", "properties", "required", "items",
    "additionalProperties", "pattern", "default", "allOf", "oneOf", "anyOf", "not",
    "discriminator", "exclusiveMinimum", "exclusiveMaximum", *LOWER_BOUNDS, *UPPER_BOUNDS,
}


@dataclass
class View:
    """One schema node as a client sees it (see the module docstring)."""

    types: frozenset[str] | None = None      # None: any type
    format: str | None = None
    enum: frozenset[str] | None = None       # values as canonical JSON; None: not an enum
    nullable: bool | None = None             # None: not said (means no in 3.0)
    properties: dict[str, View] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    items: View | None = None
    additional: bool | None = None           # False: additionalProperties false
    bounds: dict[str, float] = field(default_factory=dict)
    patterns: frozenset[str] = frozenset()
    default: Any = MISSING
    docs: dict[str, Any] = field(default_factory=dict)
    cycle: str | None = None                 # a $ref met again while inside itself


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


Resolver = Callable[[str], Any]


def flatten(node: Any, resolve: Resolver, _stack: tuple[str, ...] = ()) -> View:
    """The view of a schema node; `resolve` maps a local `$ref` to its target."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in _stack:
            return View(cycle=ref)
        _stack = (*_stack, ref)
        node = resolve(ref)
    if not isinstance(node, dict):
        return View()
    view = _own(node, resolve, _stack)
    for member in node.get("allOf", []):
        view = intersect(view, flatten(member, resolve, _stack))
    for key in ("oneOf", "anyOf"):
        if node.get(key):
            view = intersect(view, union(flatten(m, resolve, _stack) for m in node[key]))
    return view


def _own(node: dict[str, Any], resolve: Resolver, stack: tuple[str, ...]) -> View:
    types: frozenset[str] | None = None
    if "type" in node:
        types = frozenset([node["type"]] if isinstance(node["type"], str) else node["type"])
    elif "properties" in node:
        types = frozenset(["object"])
    additional = node.get("additionalProperties")
    return View(
        types=types,
        format=node.get("format"),
        enum=frozenset(canonical(v) for v in node["enum"]) if "enum" in node else None,
        nullable=node.get("nullable"),
        properties={name: flatten(sub, resolve, stack)
                    for name, sub in (node.get("properties") or {}).items()},
        required=frozenset(node.get("required", [])),
        items=flatten(node["items"], resolve, stack) if "items" in node else None,
        additional=False if additional is False else None,
        bounds={k: node[k] for k in (*LOWER_BOUNDS, *UPPER_BOUNDS) if k in node},
        patterns=frozenset([node["pattern"]]) if "pattern" in node else frozenset(),
        default=node.get("default", MISSING),
        docs={k: v for k, v in node.items() if k not in _STRUCTURAL},
    )


def _meet_types(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None or b is None:
        return a if b is None else b
    both = a & b
    if "integer" in a | b and "number" in a | b:
        both |= {"integer"}
    return frozenset(both)


def intersect(a: View, b: View) -> View:
    """`allOf` of two views: a value must satisfy both."""
    if a.cycle or b.cycle:
        return a if a.cycle else b
    props = dict(a.properties)
    for name, sub in b.properties.items():
        props[name] = intersect(props[name], sub) if name in props else sub
    bounds = dict(a.bounds)
    for key, value in b.bounds.items():
        if key not in bounds:
            bounds[key] = value
        else:
            tighter = max if key in LOWER_BOUNDS else min
            bounds[key] = tighter(bounds[key], value)
    if a.nullable is False or b.nullable is False:
        nullable: bool | None = False
    else:
        nullable = True if (a.nullable or b.nullable) else None
    return View(
        types=_meet_types(a.types, b.types),
        format=a.format or b.format,
        enum=a.enum & b.enum if a.enum is not None and b.enum is not None else (a.enum or b.enum),
        nullable=nullable,
        properties=props,
        required=a.required | b.required,
        items=(intersect(a.items, b.items) if a.items and b.items else (a.items or b.items)),
        additional=False if (a.additional is False or b.additional is False) else None,
        bounds=bounds,
        patterns=a.patterns | b.patterns,
        default=a.default if a.default is not MISSING else b.default,
        docs={**b.docs, **a.docs},  # the outer node's words win over a referenced piece's
    )


def union(views: Iterable[View]) -> View:
    """`oneOf`/`anyOf`: a value satisfies one variant; see the module docstring."""
    vs = [v for v in views if not v.cycle] or list(views)
    if not vs:
        return View()
    names = {name for v in vs for name in v.properties}
    props = {name: union(v.properties[name] for v in vs if name in v.properties)
             for name in sorted(names)}
    bounds: dict[str, float] = {}
    for key in (*LOWER_BOUNDS, *UPPER_BOUNDS):
        if all(key in v.bounds for v in vs):
            values = [v.bounds[key] for v in vs]
            bounds[key] = min(values) if key in LOWER_BOUNDS else max(values)
    items = [v.items for v in vs if v.items is not None]
    first = vs[0]
    same = all(v.format == first.format for v in vs)
    return View(
        types=_unite([v.types for v in vs]),
        format=first.format if same else None,
        enum=_unite([v.enum for v in vs]),
        nullable=True if any(v.nullable for v in vs) else None,
        properties=props,
        required=frozenset.intersection(*(v.required for v in vs)),
        items=union(items) if items else None,
        additional=False if all(v.additional is False for v in vs) else None,
        bounds=bounds,
        patterns=first.patterns if all(v.patterns == first.patterns for v in vs) else frozenset(),
        default=first.default if all(v.default == first.default for v in vs) else MISSING,
        docs={},
    )


def _unite(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
    """The union of value sets, where None (unconstrained) absorbs everything."""
    out: frozenset[str] = frozenset()
    for one in sets:
        if one is None:
            return None
        out |= one
    return out
