"""CORS (D13): preflights answered from the spec, the API's headers exposed, /__mock/ excluded;
then a real browser on another origin uses the real mock process."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from layers_kit.mock.cli import main as mock_main
from layers_kit.mock.config import Config
from layers_kit.mock.web.app import create_app
from tests.support import ids, pages
from tests.support.process import start_mock
from tests.support.tools import CHROMIUM_ARGS, require_chromium

ORIGIN = "http://app.example:3000"
REGEN = f"/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate"
# What a browser client of this API sends and reads (D13's lists, in the spec's words).
REQUEST_HEADERS = {"x-api-key", "authorization", "idempotency-key", "if-none-match", "prefer",
                   "content-type"}
EXPOSED = {"x-request-id", "location", "etag", "idempotent-replayed", "retry-after",
           "x-ratelimit-endpoint-class"}


def _client(**config) -> TestClient:
    return TestClient(create_app(Config(clock="manual", **config)))


def _preflight(c: TestClient, path: str, method: str = "POST", origin: str = ORIGIN):
    return c.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                    "Access-Control-Request-Headers": "x-api-key,content-type"})


def _names(value: str) -> set[str]:
    return {v.strip().lower() for v in value.split(",")}


def test_preflight_answers_with_the_paths_methods_and_the_apis_headers():
    with _client() as c:
        r = _preflight(c, REGEN)
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "*"
        assert _names(r.headers["access-control-allow-methods"]) == {"post"}
        assert _names(r.headers["access-control-allow-headers"]) == REQUEST_HEADERS
        assert int(r.headers["access-control-max-age"]) > 0
        assert "access-control-allow-credentials" not in r.headers  # never with a wildcard
        assert r.headers["x-request-id"].startswith("req_")
        policy = _preflight(c, f"/v1/projects/{ids.PRJ_REVIEW_ALL}/content-review-policy",
                            "PATCH")
        assert _names(policy.headers["access-control-allow-methods"]) == {"get", "patch"}


def test_answers_expose_the_apis_headers_to_scripts():
    with _client() as c:
        r = c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}",
                  headers={"Origin": ORIGIN, "X-Api-Key": ids.FULL})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert _names(r.headers["access-control-expose-headers"]) == EXPOSED
        err = c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers={"Origin": ORIGIN})
        assert err.status_code == 401 and err.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-origin" not in c.get(
            f"/v1/content/{ids.CNT_NOT_REQUIRED}", headers={"X-Api-Key": ids.FULL}).headers


def test_the_control_api_is_never_cors_enabled():
    with _client() as c:
        for r in (_preflight(c, "/__mock/reset"),
                  c.post("/__mock/reset", headers={"Origin": ORIGIN})):
            assert not any(k.startswith("access-control-") for k in r.headers), r.headers


def test_unknown_route_preflight_is_the_d5_404():
    with _client() as c:
        r = _preflight(c, "/v1/nothing")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_listed_origins_only_and_credentials_then():
    with _client(cors_origins=[ORIGIN, "http://localhost:5173"]) as c:
        ok = _preflight(c, REGEN)
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert "origin" in _names(ok.headers["vary"])
        other = _preflight(c, REGEN, origin="http://evil.example")
        assert "access-control-allow-origin" not in other.headers
        assert "access-control-allow-methods" not in other.headers
        r = c.get(f"/v1/content/{ids.CNT_NOT_REQUIRED}",
                  headers={"Origin": "http://evil.example", "X-Api-Key": ids.FULL})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_no_cors_leaves_the_layer_out():
    with _client(cors=False) as c:
        r = _preflight(c, REGEN)
        assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert "access-control-allow-origin" not in r.headers


def test_a_malformed_origin_stops_the_start(capsys):
    assert mock_main(["--port", "0", "--cors-origin", "http://app.example:3000/path"]) == 2
    assert "--cors-origin takes an origin" in capsys.readouterr().err


# ---- a real browser on a second origin ------------------------------------------------------

PAGE = b"<!doctype html><title>partner app</title><p>a page on another origin</p>"


@pytest.fixture
def page_origin():
    """A tiny web server on another free port: the partner's app origin."""
    with pages.page_origin(PAGE) as origin:
        yield origin


SCRIPT = """async ([base, path, apiKey]) => {
  const call = async (method, url, headers) => {
    try {
      const r = await fetch(base + url, {method, headers: {"X-Api-Key": apiKey, ...headers},
                                         body: method === "POST" ? "{}" : undefined});
      const text = await r.text();
      return {status: r.status, location: r.headers.get("Location"), body: text,
              requestId: r.headers.get("X-Request-Id"),
              replayed: r.headers.get("Idempotent-Replayed"), etag: r.headers.get("ETag")};
    } catch (e) { return {blocked: String(e)}; }
  };
  const key = "browser-" + Math.random();
  const json = {"Content-Type": "application/json", "Idempotency-Key": key};
  const first = await call("POST", path, json);
  const replay = await call("POST", path, json);
  const job = first.location ? await call("GET", first.location, {}) : null;
  const control = await call("POST", "/__mock/reset", {});
  return {first, replay, job, control};
}"""


def _run_in_browser(page_url: str, mock_url: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_url)
            return page.evaluate(SCRIPT, [mock_url, REGEN, ids.FULL])
        finally:
            browser.close()


@pytest.mark.e2e
def test_a_browser_app_on_another_origin_starts_a_regeneration(page_origin):
    require_chromium()
    mock = start_mock("--clock", "manual")
    try:
        out = _run_in_browser(page_origin + "/", mock.url)
    finally:
        assert mock.stop() == 0
    first, replay, job = out["first"], out["replay"], out["job"]
    assert first["status"] == 202, out
    body = json.loads(first["body"])
    assert first["location"] == body["locationUrl"]
    assert first["requestId"].startswith("req_")
    assert replay["status"] == 202 and replay["replayed"] == "true"
    assert job["status"] == 200 and job["etag"]
    assert "blocked" in out["control"], "a page must not reach the control API"


@pytest.mark.e2e
def test_a_browser_app_on_an_origin_not_listed_is_blocked(page_origin):
    require_chromium()
    mock = start_mock("--clock", "manual", "--cors-origin", "http://allowed.example:3000")
    try:
        out = _run_in_browser(page_origin + "/", mock.url)
    finally:
        assert mock.stop() == 0
    assert "blocked" in out["first"], out
