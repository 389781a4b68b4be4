"""The packages' layering, read from the imports themselves (ast), so it cannot drift.

- `contract/` is the lowest layer: it imports neither the mock nor the kit (nor the serving
  package); the mock, the kit and the proxy read the spec only through it.
- `conformance/` checks *any* implementation: it reaches the mock only through its `--mock`
  door (conformance/bundled.py) and the `layers_mock` fixture (conformance/pytest_plugin.py).
- `serving/` (uvicorn set up for the processes that listen) knows none of the others.
- No cycles between the packages.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "layers_kit"
PACKAGES = ("contract", "mock", "conformance", "serving")
MOCK_DOORS = {"conformance/bundled.py", "conformance/pytest_plugin.py"}


def _imports(path: Path) -> set[str]:
    """The packages of this distribution a module imports (at any depth, lazily or not)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                continue  # relative: inside the module's own package
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == NAMESPACE and len(parts) > 1 and parts[1] in PACKAGES:
                found.add(parts[1])
            elif parts[0] in PACKAGES:  # a bare top-level name would be a collision
                found.add(f"bare:{parts[0]}")
    return found


def _modules(package: str) -> dict[str, set[str]]:
    return {p.relative_to(ROOT).as_posix(): _imports(p)
            for p in sorted((ROOT / package).rglob("*.py"))}


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, set[str]]]:
    return {package: _modules(package) for package in PACKAGES}


def test_no_module_imports_a_package_by_a_bare_top_level_name(graph):
    bare = [(m, sorted(i for i in imports if i.startswith("bare:")))
            for modules in graph.values() for m, imports in modules.items()
            if any(i.startswith("bare:") for i in imports)]
    assert bare == [], "import these through layers_kit.<package>"


def test_the_contract_is_the_lowest_layer(graph):
    offenders = {m: sorted(imports - {"contract"}) for m, imports in graph["contract"].items()
                 if imports - {"contract"}}
    assert offenders == {}


def test_serving_knows_no_other_package(graph):
    offenders = {m: sorted(imports - {"serving"}) for m, imports in graph["serving"].items()
                 if imports - {"serving"}}
    assert offenders == {}


def test_the_kit_reaches_the_mock_only_through_its_mock_door(graph):
    reaching = {m for m, imports in graph["conformance"].items() if "mock" in imports}
    assert reaching <= MOCK_DOORS, sorted(reaching - MOCK_DOORS)
    assert reaching, "the --mock door no longer imports the mock: update MOCK_DOORS"


def test_the_mock_never_imports_the_kit(graph):
    assert {m for m, imports in graph["mock"].items() if "conformance" in imports} == set()


def test_no_cycles_between_packages(graph):
    edges = {package: set().union(*graph[package].values()) - {package}
             for package in PACKAGES}
    for a, b in itertools.permutations(PACKAGES, 2):
        assert not (b in edges[a] and a in edges[b]), f"{a} and {b} import each other"

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in edges[start] if n in PACKAGES)

    assert [p for p in PACKAGES if reaches(p, p)] == []


def test_the_layering_test_sees_a_forbidden_import(tmp_path):
    """The reader is not blind: a lazy import inside a function is found too."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from layers_kit.mock.embed import serve\n"
                      "import mock.web\n", encoding="utf-8")
    assert _imports(module) == {"mock", "bare:mock"}
