"""The breaking-change diff of two contract versions (D12), by the rules of `contract.rules`.

Every operation of BASE is matched with NEW's by method and URL template (parameter names do
not matter on the wire), and what a client sends (parameters, body) and receives (statuses,
headers, bodies) is compared on resolved, flattened schemas (`schema_view`), so a renamed or
restructured component is no change by itself. Each change carries its rule id and a JSON
pointer: into NEW for what exists there, into BASE (said so) for what NEW removed; below an
operation the pointer walks the operation with its `$ref`s followed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from layers_kit.contract.document import Document, pointer
from layers_kit.contract.rules import RULES
from layers_kit.contract.schema_view import LOWER_BOUNDS, MISSING, UPPER_BOUNDS, View, flatten

_OP_DOC_KEYS = ("summary", "description", "tags", "externalDocs")


@dataclass(frozen=True)
class Change:
    rule: str
    pointer: str
    message: str
    in_base: bool = False  # the pointer is into BASE (NEW removed what it points at)

    @property
    def breaking(self) -> bool:
        return RULES[self.rule].breaking


@dataclass
class DiffResult:
    base_version: str
    new_version: str
    base_major: int
    new_major: int
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def major_raised(self) -> bool:
        return self.new_major > self.base_major

    @property
    def gate_fails(self) -> bool:
        """Breaking changes within one major version: the promise is broken (exit 1)."""
        return bool(self.breaking) and not self.major_raised


def diff(base: Document, new: Document) -> DiffResult:
    """Every change from BASE to NEW, classified (see the module docstring)."""
    differ = _Differ(base, new)
    differ.run()
    return DiffResult(base.version, new.version, base.major, new.major, differ.changes)


def _covers(big: frozenset[str] | None, small: frozenset[str] | None) -> bool:
    """Every value of a type in `small` is of a type in `big` (an integer is a number)."""
    if big is None:
        return True
    if small is None:
        return False
    return all(t in big or (t == "integer" and "number" in big) for t in small)


def _docs(node: dict[str, Any], keys: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> dict:
    return {k: v for k, v in node.items()
            if (k in keys or k.startswith("x-")) and k not in skip}


class _Differ:
    def __init__(self, base: Document, new: Document) -> None:
        self.base = base
        self.new = new
        self.changes: list[Change] = []

    def add(self, rule: str, ptr: str, message: str) -> None:
        assert rule in RULES, rule
        in_base = ptr.startswith("(BASE)")
        self.changes.append(Change(rule, ptr.removeprefix("(BASE)"), message, in_base))

    # -- the document ------------------------------------------------------------------------
    def run(self) -> None:
        self._info()
        self._servers()
        self._security_schemes()
        base_ops, new_ops = self.base.operations(), self.new.operations()
        base_paths = {key: path for (key, _m), (path, _i, _o) in base_ops.items()}
        new_paths = {key: path for (key, _m), (path, _i, _o) in new_ops.items()}
        for key, path in base_paths.items():
            if key not in new_paths:
                self.add("path-removed", "(BASE)" + pointer("paths", path),
                         f"path {path} is gone: every call to it fails")
        for key, path in new_paths.items():
            if key not in base_paths:
                self.add("path-added", pointer("paths", path), f"new path {path}")
        for (key, method), (path, item, op) in base_ops.items():
            if (key, method) not in new_ops:
                if key in new_paths:
                    self.add("operation-removed", "(BASE)" + pointer("paths", path, method),
                             f"{method.upper()} {path} ({op.get('operationId')}) is gone")
                continue
            npath, nitem, nop = new_ops[(key, method)]
            self._operation(method, (path, item, op), (npath, nitem, nop))
        for (key, method), (path, _item, op) in new_ops.items():
            if (key, method) not in base_ops and key in base_paths:
                self.add("operation-added", pointer("paths", path, method),
                         f"new operation {method.upper()} {path} ({op.get('operationId')})")
        self._error_codes()

    def _info(self) -> None:
        for key in ("info", "tags", "externalDocs"):
            b, n = self.base.data.get(key), self.new.data.get(key)
            if key == "info":
                b = {k: v for k, v in (b or {}).items() if k != "version"}
                n = {k: v for k, v in (n or {}).items() if k != "version"}
            if b != n:
                self.add("documentation-changed", pointer(key), f"{key} changed")

    def _servers(self) -> None:
        base = [s.get("url") for s in self.base.data.get("servers") or []]
        new = [s.get("url") for s in self.new.data.get("servers") or []]
        for i, url in enumerate(base):
            if url not in new:
                self.add("server-removed", "(BASE)" + pointer("servers", i, "url"),
                         f"server {url} is gone")
        for i, url in enumerate(new):
            if url not in base:
                self.add("server-added", pointer("servers", i, "url"), f"new server {url}")

    def _security_schemes(self) -> None:
        base = (self.base.data.get("components") or {}).get("securitySchemes") or {}
        new = (self.new.data.get("components") or {}).get("securitySchemes") or {}
        wire = ("type", "in", "name", "scheme", "bearerFormat", "flows", "openIdConnectUrl")
        for name, scheme in base.items():
            b, n = self.base.deref(scheme), self.new.deref(new.get(name, {}))
            if name in new and any(b.get(k) != n.get(k) for k in wire):
                self.add("security-scheme-changed",
                         pointer("components", "securitySchemes", name),
                         f"security scheme {name} now sends its credential differently")
            elif name in new and _docs(b, ("description",)) != _docs(n, ("description",)):
                self.add("documentation-changed",
                         pointer("components", "securitySchemes", name),
                         f"security scheme {name}: description changed")

    def _error_codes(self) -> None:
        base, new = _error_codes(self.base), _error_codes(self.new)
        for code in sorted(base - new):
            self.add("error-code-removed", "(BASE)/components",
                     f"error code {code} is no longer documented by any response")
        for code in sorted(new - base):
            self.add("error-code-added", "/components", f"new error code {code}")

    # -- one operation -------------------------------------------------------------------------
    def _operation(self, method: str, base: tuple, new: tuple) -> None:
        bpath, bitem, bop = base
        npath, nitem, nop = new
        ptr = pointer("paths", npath, method)
        name = nop.get("operationId") or f"{method.upper()} {npath}"
        if bop.get("operationId") != nop.get("operationId"):
            self.add("operation-id-changed", ptr + "/operationId",
                     f"operationId {bop.get('operationId')} became {nop.get('operationId')}")
        if nop.get("deprecated") and not bop.get("deprecated"):
            self.add("operation-deprecated", ptr + "/deprecated", f"{name} is deprecated")
        skip = ("x-required-scopes",)
        bdocs, ndocs = _docs(bop, _OP_DOC_KEYS, skip), _docs(nop, _OP_DOC_KEYS, skip)
        for key in sorted(set(bdocs) | set(ndocs)):
            if bdocs.get(key) != ndocs.get(key):
                self.add("documentation-changed", f"{ptr}/{key}", f"{name}: {key} changed")
        self._security(bop, nop, ptr, name)
        self._parameters((bpath, bitem, bop), (npath, nitem, nop), ptr, name)
        self._request_body(bop.get("requestBody"), nop.get("requestBody"), ptr, name)
        self._responses(bop.get("responses") or {}, nop.get("responses") or {}, ptr, name)

    def _security(self, bop: dict, nop: dict, ptr: str, name: str) -> None:
        def alternatives(doc: Document, op: dict) -> set[frozenset]:
            reqs = op["security"] if "security" in op else doc.data.get("security") or []
            if not reqs:
                return {frozenset()}
            return {frozenset((s, frozenset(scopes)) for s, scopes in r.items()) for r in reqs}

        b, n = alternatives(self.base, bop), alternatives(self.new, nop)
        if b != n:
            if b <= n:
                self.add("security-alternative-added", ptr + "/security",
                         f"{name}: another way to authenticate was added")
            else:
                self.add("security-changed", ptr + "/security",
                         f"{name}: a client that authenticated before may be refused now")
        bs, ns = bop.get("x-required-scopes"), nop.get("x-required-scopes")
        if sorted(bs or []) != sorted(ns or []):
            self.add("required-scope-changed", ptr + "/x-required-scopes",
                     f"{name}: required scope {bs} became {ns}")

    def _parameters(self, base: tuple, new: tuple, ptr: str, name: str) -> None:
        bparams, nparams = self._params(self.base, *base), self._params(self.new, *new)
        for key, (bp, bptr) in bparams.items():
            label = f"{bp.get('in')} parameter {bp.get('name')}"
            if key not in nparams:
                self.add("parameter-removed", "(BASE)" + bptr, f"{name}: {label} is gone")
                continue
            np_, nptr = nparams[key]
            if np_.get("required") and not bp.get("required"):
                self.add("parameter-became-required", nptr + "/required",
                         f"{name}: {label} is now required")
            elif bp.get("required") and not np_.get("required"):
                self.add("parameter-became-optional", nptr + "/required",
                         f"{name}: {label} is now optional")
            if _docs(bp, ("description", "example", "examples", "deprecated")) != _docs(
                    np_, ("description", "example", "examples", "deprecated")):
                self.add("documentation-changed", nptr, f"{name}: {label} documentation changed")
            self._schema(self._view(self.base, bp.get("schema")),
                         self._view(self.new, np_.get("schema")),
                         nptr + "/schema", "request", f"{name}: {label}")
        for key, (np_, nptr) in nparams.items():
            if key not in bparams:
                label = f"{np_.get('in')} parameter {np_.get('name')}"
                if np_.get("required"):
                    self.add("parameter-required-added", nptr, f"{name}: new required {label}")
                else:
                    self.add("parameter-added", nptr, f"{name}: new optional {label}")

    @staticmethod
    def _params(doc: Document, path: str, item: dict, op: dict) -> dict:
        """(in, key) -> (parameter, pointer); path parameters keyed by position in the URL."""
        order = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        out: dict[tuple[str, str], tuple[dict, str]] = {}
        where = [(item.get("parameters") or [], pointer("paths", path, "parameters"))]
        for method, value in item.items():
            if value is op:
                where.append((op.get("parameters") or [], pointer("paths", path, method,
                                                                  "parameters")))
        for params, base_ptr in where:
            for i, raw in enumerate(params):
                p = doc.deref(raw)
                where_in, pname = p.get("in", ""), p.get("name", "")
                if where_in == "path" and pname in order:
                    key = ("path", str(order.index(pname)))
                elif where_in == "header":
                    key = ("header", pname.lower())
                else:
                    key = (where_in, pname)
                out[key] = (p, f"{base_ptr}/{i}")
        return out

    def _request_body(self, braw: Any, nraw: Any, ptr: str, name: str) -> None:
        b, n = self.base.deref(braw), self.new.deref(nraw)
        ptr += "/requestBody"
        if b is None and n is None:
            return
        if b is None:
            rule = "request-body-required-added" if n.get("required") else "request-property-added"
            self.add(rule, ptr, f"{name}: a request body was added")
            return
        if n is None:
            self.add("request-body-removed", "(BASE)" + ptr, f"{name}: the request body is gone")
            return
        if n.get("required") and not b.get("required"):
            self.add("request-body-became-required", ptr + "/required",
                     f"{name}: the request body is now required")
        if b.get("description") != n.get("description"):
            self.add("documentation-changed", ptr + "/description", f"{name}: body description")
        self._content(b.get("content") or {}, n.get("content") or {}, ptr + "/content",
                      "request", f"{name}: request body")

    def _content(self, b: dict, n: dict, ptr: str, side: str, label: str) -> None:
        for media in b:
            if media not in n:
                self.add(f"{side}-media-type-removed", "(BASE)" + f"{ptr}{pointer(media)}",
                         f"{label}: {media} is gone")
        for media, nmt in n.items():
            mptr = ptr + pointer(media)
            if media not in b:
                self.add(f"{side}-media-type-added", mptr, f"{label}: {media} added")
                continue
            bmt = b[media]
            if _docs(bmt, ("example", "examples")) != _docs(nmt, ("example", "examples")):
                self.add("documentation-changed", mptr, f"{label}: examples changed")
            self._schema(self._view(self.base, bmt.get("schema")),
                         self._view(self.new, nmt.get("schema")), mptr + "/schema", side, label)

    def _responses(self, b: dict, n: dict, ptr: str, name: str) -> None:
        ptr += "/responses"
        for status in b:
            if status not in n:
                self.add("response-status-removed", "(BASE)" + f"{ptr}/{status}",
                         f"{name}: response {status} is gone")
        for status, nraw in n.items():
            sptr = f"{ptr}/{status}"
            if status not in b:
                self.add("response-status-added", sptr, f"{name}: new response {status}")
                continue
            br, nr = self.base.deref(b[status]), self.new.deref(nraw)
            label = f"{name}: response {status}"
            if _docs(br, ("description", "links")) != _docs(nr, ("description", "links")):
                self.add("documentation-changed", sptr, f"{label}: description or links changed")
            self._headers(br.get("headers") or {}, nr.get("headers") or {}, sptr + "/headers",
                          label)
            self._content(br.get("content") or {}, nr.get("content") or {}, sptr + "/content",
                          "response", label)

    def _headers(self, b: dict, n: dict, ptr: str, label: str) -> None:
        bh = {k.lower(): (k, self.base.deref(v)) for k, v in b.items()}
        nh = {k.lower(): (k, self.new.deref(v)) for k, v in n.items()}
        for key, (hname, header) in bh.items():
            if key not in nh:
                self.add("response-header-removed", "(BASE)" + ptr + pointer(hname),
                         f"{label}: header {hname} is gone")
                continue
            nname, nheader = nh[key]
            hptr = ptr + pointer(nname)
            if header.get("required") and not nheader.get("required"):
                self.add("response-header-removed", hptr + "/required",
                         f"{label}: header {hname} is no longer always sent")
            if header.get("description") != nheader.get("description"):
                self.add("documentation-changed", hptr, f"{label}: header {hname} description")
            self._schema(self._view(self.base, header.get("schema")),
                         self._view(self.new, nheader.get("schema")), hptr + "/schema",
                         "response", f"{label}: header {hname}")
        for key, (nname, _h) in nh.items():
            if key not in bh:
                self.add("response-header-added", ptr + pointer(nname),
                         f"{label}: new header {nname}")

    @staticmethod
    def _view(doc: Document, schema: Any) -> View:
        return flatten(schema, doc.resolve) if schema is not None else View()

    # -- schemas -------------------------------------------------------------------------------
    def _schema(self, b: View, n: View, ptr: str, side: str, label: str,
                narrowed: bool = False) -> None:
        """Compare one node; `narrowed`: a response's tag enum above lost values (see below)."""
        if b.cycle or n.cycle:
            return
        req = side == "request"
        where = f"{label} at {ptr.rsplit('/schema', 1)[-1] or 'the top'}"
        if b.types != n.types:
            safe = _covers(n.types, b.types) if req else _covers(b.types, n.types)
            self.add("type-widened" if safe else "type-changed", ptr + "/type",
                     f"{where}: type {_fmt(b.types)} became {_fmt(n.types)}")
        if b.format != n.format:
            safe = n.format is None if req else b.format is None
            relaxed = "request-constraint-relaxed" if req else "response-constraint-changed"
            self.add(relaxed if safe else "format-changed", ptr + "/format",
                     f"{where}: format {b.format} became {n.format}")
        self._enum(b, n, ptr, side, where)
        bnull, nnull = b.nullable is True, n.nullable is True
        if bnull != nnull:
            if req:
                rule = "request-nullable-removed" if bnull else "request-constraint-relaxed"
            else:
                rule = "response-nullable-added" if nnull else "response-constraint-changed"
            self.add(rule, ptr + "/nullable", f"{where}: nullable {bnull} became {nnull}")
        for key in sorted(set(b.bounds) | set(n.bounds)):
            bv, nv = b.bounds.get(key), n.bounds.get(key)
            if bv == nv:
                continue
            if not req:
                rule = "response-constraint-changed"
            elif key in UPPER_BOUNDS:
                rule = "request-max-decreased" if nv is not None and (bv is None or nv < bv) \
                    else "request-constraint-relaxed"
            else:
                assert key in LOWER_BOUNDS
                rule = "request-min-increased" if nv is not None and (bv is None or nv > bv) \
                    else "request-constraint-relaxed"
            self.add(rule, f"{ptr}/{key}", f"{where}: {key} {bv} became {nv}")
        if b.patterns != n.patterns:
            if not req:
                rule = "response-constraint-changed"
            else:
                rule = "request-pattern-removed" if n.patterns < b.patterns \
                    else "request-pattern-changed"
            self.add(rule, ptr + "/pattern",
                     f"{where}: pattern {sorted(b.patterns)} became {sorted(n.patterns)}")
        if b.default != n.default and not (b.default is MISSING and n.default is MISSING):
            rule = "default-added" if b.default is MISSING else "default-changed"
            self.add(rule, ptr + "/default", f"{where}: default {_val(b.default)} became "
                                             f"{_val(n.default)}")
        if req and b.additional is not False and n.additional is False:
            self.add("request-additional-properties-forbidden", ptr + "/additionalProperties",
                     f"{where}: properties it does not list are now refused")
        if b.docs != n.docs:
            keys = sorted(k for k in set(b.docs) | set(n.docs) if b.docs.get(k) != n.docs.get(k))
            self.add("documentation-changed", ptr, f"{where}: {', '.join(keys)} changed")
        self._properties(b, n, ptr, side, label, narrowed)
        if b.items is not None and n.items is not None:
            self._schema(b.items, n.items, ptr + "/items", side, label)

    def _enum(self, b: View, n: View, ptr: str, side: str, where: str) -> None:
        if b.enum == n.enum:
            return
        eptr = ptr + "/enum"
        if side == "request":
            if b.enum is None:
                self.add("request-enum-added", eptr, f"{where}: now limited to {_fmt(n.enum)}")
            elif n.enum is None:
                self.add("request-constraint-relaxed", eptr, f"{where}: no longer an enum")
            else:
                if b.enum - n.enum:
                    self.add("request-enum-value-removed", eptr,
                             f"{where}: {_fmt(b.enum - n.enum)} no longer accepted")
                if n.enum - b.enum:
                    self.add("request-enum-value-added", eptr,
                             f"{where}: {_fmt(n.enum - b.enum)} accepted")
            return
        if b.enum is None:
            self.add("response-constraint-changed", eptr, f"{where}: now an enum {_fmt(n.enum)}")
        elif n.enum is None:
            self.add("response-enum-removed", eptr, f"{where}: no longer an enum")
        else:
            error_code = ptr.endswith("/schema/properties/error/properties/code") and (
                "/responses/4" in ptr or "/responses/5" in ptr)
            if n.enum - b.enum:
                self.add("response-error-code-added" if error_code
                         else "response-enum-value-added", eptr,
                         f"{where}: {_fmt(n.enum - b.enum)} may now be sent")
            if b.enum - n.enum:
                self.add("response-enum-value-removed", eptr,
                         f"{where}: {_fmt(b.enum - n.enum)} no longer sent")

    def _properties(self, b: View, n: View, ptr: str, side: str, label: str,
                    narrowed: bool) -> None:
        """Properties added, removed, made required or optional; then each one in depth.

        A response object whose required enum property (a tag such as `error.code`) lost values
        documents fewer cases; an optional property that only those cases carried (e.g.
        `details.issues` once a 404 lists only NOT_FOUND) goes with them: rule
        `response-variant-narrowed`, not a removal. A required property is never excused.
        """
        req = side == "request"
        narrowed = narrowed or (not req and any(
            name in b.required and name in n.required
            and _lost(b.properties[name].enum, n.properties[name].enum)
            for name in set(b.properties) & set(n.properties)))
        names = sorted(set(b.properties) | set(n.properties) | b.required | n.required)
        for prop in names:
            pptr = f"{ptr}/properties/{_esc(prop)}"
            in_b, in_n = prop in b.properties, prop in n.properties
            was_req, is_req = prop in b.required, prop in n.required
            where = f"{label}: property {prop}"
            if in_b and not in_n and prop not in n.required:
                if narrowed and not was_req:
                    self.add("response-variant-narrowed", "(BASE)" + pptr,
                             f"{where}: only the cases this response no longer documents had it")
                else:
                    self.add(f"{side}-property-removed", "(BASE)" + pptr, f"{where} is gone")
                continue
            if in_n and not in_b and not was_req:
                if req and is_req:
                    self.add("request-property-required-added", pptr, f"{where}: new, required")
                else:
                    self.add(f"{side}-property-added", pptr, f"{where}: new"
                             + (", required" if is_req else ""))
                continue
            if was_req != is_req:
                if req:
                    rule = "request-property-became-required" if is_req \
                        else "request-property-became-optional"
                else:
                    rule = "response-property-became-required" if is_req \
                        else "response-property-no-longer-required"
                self.add(rule, pptr, f"{where}: required {was_req} became {is_req}")
            if in_b and in_n:
                self._schema(b.properties[prop], n.properties[prop], pptr, side, label, narrowed)


def _error_codes(doc: Document) -> set[str]:
    """The error codes a document declares: its `x-error-codes` registry, and the `error.code`
    enums of its 4xx/5xx responses and of its component schemas and responses shaped as the
    error envelope."""
    schemas: list[Any] = []
    for _path, _item, op in doc.operations().values():
        for status, raw in (op.get("responses") or {}).items():
            if str(status).startswith(("4", "5")):
                schemas += [m.get("schema") for m in (doc.deref(raw).get("content") or {}).values()]
    components = doc.data.get("components") or {}
    schemas += list((components.get("schemas") or {}).values())
    for raw in (components.get("responses") or {}).values():
        schemas += [m.get("schema") for m in (doc.deref(raw).get("content") or {}).values()]
    codes: set[str] = set(doc.data.get("x-error-codes") or {})  # every code of v1
    for schema in schemas:
        view = flatten(schema, doc.resolve)
        if set(view.properties) != {"error"}:  # an envelope, not e.g. a job with an `error`
            continue
        err = view.properties["error"]
        code = err.properties.get("code") if err else None
        if code is not None and code.enum:
            codes |= {json.loads(v) for v in code.enum}
    return codes


def _lost(base: frozenset[str] | None, new: frozenset[str] | None) -> bool:
    """An enum in both that lost values."""
    return base is not None and new is not None and bool(base - new)


def _esc(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _fmt(values: frozenset[str] | None) -> str:
    return "any" if values is None else "[" + ", ".join(sorted(values)) + "]"


def _val(value: Any) -> str:
    return "(none)" if value is MISSING else repr(value)
