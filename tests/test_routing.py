"""The spec is the route table: every operationId has one handler and one domain operation,
and nothing else is routed (STYLE: stripe-mock's router built from the document)."""

from __future__ import annotations

import inspect

from mock import spec
from mock.domain.service import OPERATIONS
from mock.web import handlers


def test_every_operation_has_exactly_one_handler():
    public = {name for name, fn in inspect.getmembers(handlers, inspect.iscoroutinefunction)
              if not name.startswith("_")}
    assert public == set(spec.operations())


def test_every_operation_has_one_domain_function():
    assert set(OPERATIONS) == set(spec.operations())


def test_handlers_take_exactly_the_spec_parameters():
    for op_id, o in spec.operations().items():
        op = o["operation"]
        names = {spec.resolve(p)["name"] for p in op.get("parameters", [])
                 if spec.resolve(p)["in"] == "path"}
        if "requestBody" in op:
            names.add("body")
        assert set(inspect.signature(getattr(handlers, op_id)).parameters) == names, op_id


def test_the_domain_never_imports_the_web_stack():
    import pathlib

    root = pathlib.Path(spec.__file__).parent / "domain"
    for path in root.glob("*.py"):
        text = path.read_text()
        for forbidden in ("connexion", "starlette", "uvicorn", "mock.web", "httpx"):
            assert f"import {forbidden}" not in text and f"from {forbidden}" not in text, \
                f"{path.name} imports {forbidden}"
