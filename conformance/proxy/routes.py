"""The contract's route table, read from the spec: which operation a concrete request is.

The proxy needs the operationId of each exchange (getJob's reads, the 202s of job starts) and
whether a path belongs to the API at all: paths outside the contract's prefixes (a server's
docs, health or admin URLs) are forwarded and counted, never judged.
"""

from __future__ import annotations

import re
from typing import Any

from layers_kit.contract.spec import resolve

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class Routes:
    def __init__(self, doc: dict[str, Any]) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, str]]] = []
        prefixes = set()
        for template, item in doc["paths"].items():
            regex = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
            ops = {m.upper(): op["operationId"] for m, op in item.items() if m in _METHODS}
            self._routes.append((re.compile(regex), ops))
            prefixes.add("/" + template.strip("/").split("/")[0] + "/")
        self._prefixes = tuple(sorted(prefixes))
        self.status_of_code = _codes(doc)

    def in_contract(self, path: str) -> bool:
        """True for paths under the API's prefixes (`/v1/`), known or not."""
        return path.startswith(self._prefixes)

    def match(self, method: str, path: str) -> tuple[bool, str | None]:
        """(the path is a route of the contract, the operationId of this method there)."""
        for pattern, ops in self._routes:
            if pattern.match(path):
                return True, ops.get(method.upper())
        return False, None


def _codes(doc: dict[str, Any]) -> dict[str, set[int]]:
    """D5's error code -> status table, as the spec's documented error examples show it."""
    out: dict[str, set[int]] = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            for status, response in op.get("responses", {}).items():
                if not str(status).isdigit() or int(status) < 400:
                    continue
                for media in (resolve(response).get("content") or {}).values():
                    examples = [media.get("example")] + [
                        resolve(e).get("value") for e in (media.get("examples") or {}).values()]
                    for ex in examples:
                        if isinstance(ex, dict) and isinstance(ex.get("error"), dict):
                            out.setdefault(ex["error"].get("code"), set()).add(int(status))
    return out
