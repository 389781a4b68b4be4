"""The spec is the route table (STYLE: stripe-mock's router built from the document).

One registry record per operationId, read by routing, auth, dispatch and Allow; every
operationId has one domain function taking exactly the spec's parameters, nothing else is
routed, and routing fails closed.
"""

from __future__ import annotations

import inspect
import pathlib

import pytest
from starlette.testclient import TestClient

from layers_kit.contract import operations, spec
from layers_kit.mock.config import Config
from layers_kit.mock.web.app import create_app
from layers_kit.mock.web.registry import Registry
from tests.support import ids


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


def test_every_operation_has_one_record_and_nothing_else_is_routed(registry):
    table = operations.table()
    assert registry.operation_ids() == list(table.by_id)
    for o in table:
        op = registry.by_id[o.operation_id]
        assert (op.method, op.path) == (o.method, o.path)
        assert op.scopes == tuple(o.node["x-required-scopes"]) and op.scopes
        assert op.rate_class == o.node["x-rate-limit-class"]
        assert op.takes_body == ("requestBody" in o.node)
        assert op.idempotent == (op.method in ("POST", "PATCH"))  # D6
        assert op.success and all(200 <= s < 400 for s in op.success)
        concrete = op.path.replace("{", "x").replace("}", "")
        assert registry.match(op.method, concrete).operation is op
    assert registry.match("GET", "/v1/nothing").allowed is None
    assert registry.match("GET", "/v1/jobs/a/b").allowed is None


def test_every_domain_function_takes_exactly_the_spec_parameters(registry):
    for op in registry:
        params = list(inspect.signature(op.domain).parameters)
        assert params[:2] == ["tx", "ctx"], op.operation_id
        assert set(params[2:]) == set(op.domain_kwargs()), op.operation_id


def test_allow_lists_the_methods_of_the_path(registry):
    found = registry.match("DELETE", f"/v1/projects/{ids.PRJ_AUTO}/content-review-policy")
    assert found.operation is None and found.allowed == ("GET", "PATCH")


def test_a_routed_request_without_its_operation_fails_closed():
    """Routing information removed: 500 INTERNAL in the D5 envelope, never a 200 or a 401."""
    app = create_app(Config(clock="manual"))
    del app.registry.by_id["getJob"]  # the spec still routes GET /v1/jobs/{id} to getJob
    with TestClient(app) as c:
        for headers in ({}, {"X-Api-Key": ids.FULL}):
            r = c.get("/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T", headers=headers)
            assert r.status_code == 500, r.text
            err = r.json()["error"]
            assert err["code"] == "INTERNAL" and err["requestId"] == r.headers["x-request-id"]
        # the other operations are untouched
        r = c.get(f"/v1/content/{ids.CNT_PENDING}", headers={"X-Api-Key": ids.FULL})
        assert r.status_code == 200


def test_authentication_does_not_depend_on_connexion_routing(monkeypatch):
    """No framework routing key decides whether a request is authenticated: API requests
    never pass through Connexion's router."""
    from connexion.middleware.routing import RoutingMiddleware

    original = RoutingMiddleware.__call__

    async def broken(self, scope, receive, send):
        if scope["type"] == "http":
            raise AssertionError("Connexion's router was asked about an API request")
        await original(self, scope, receive, send)

    app = create_app(Config(clock="manual"))
    monkeypatch.setattr(RoutingMiddleware, "__call__", broken)
    with TestClient(app) as c:
        assert c.get(f"/v1/content/{ids.CNT_PENDING}").status_code == 401
        r = c.get(f"/v1/content/{ids.CNT_PENDING}", headers={"X-Api-Key": ids.FULL})
        assert r.status_code == 200


def test_the_domain_never_imports_the_web_stack():
    root = pathlib.Path(spec.__file__).parent.parent / "mock" / "domain"
    for path in root.glob("*.py"):
        text = path.read_text()
        for forbidden in ("connexion", "starlette", "uvicorn", "layers_kit.mock.web", "mock.web",
                          "httpx"):
            assert f"import {forbidden}" not in text and f"from {forbidden}" not in text, \
                f"{path.name} imports {forbidden}"


def test_the_domain_sets_no_framing_headers():
    """The domain returns results; request ids and content types are the web layer's."""
    root = pathlib.Path(spec.__file__).parent.parent / "mock" / "domain"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "X-Request-Id" not in text and "Content-Type" not in text, path.name


def test_a_request_is_one_store_transaction_with_a_manual_clock_and_no_faults():
    """No transaction of its own for the manual clock (read inside the operation's) nor for
    faults when none is armed: a getJob is one transaction, and so is a keyed regenerate (the
    key's lookup, the operation and its replay record together)."""
    app = create_app(Config(clock="manual"))
    store = app.service.store
    count = [0]
    atomic = store.atomic

    def counting(fn):
        count[0] += 1
        return atomic(fn)

    store.atomic = counting
    with TestClient(app, headers={"X-Api-Key": ids.FULL}) as c:
        r = c.post(f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate",
                   headers={"Idempotency-Key": "one"}, json={})
        assert r.status_code == 202 and count[0] == 1
        count[0] = 0
        assert c.get(r.headers["location"]).status_code == 200
        assert count[0] == 1
