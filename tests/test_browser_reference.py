"""The reference page and Swagger UI in a real browser (D12): headless Debian chromium driven by
Playwright, with every request outside the page's own origin aborted.

- `index.html` as `layers-contract publish` writes it, opened from disk;
- `/reference` and `/docs` of the real `layers-mock` process on a free loopback port.

Screenshots are kept under reports/browser/ (CI keeps reports/ as its artifact).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from layers_kit.contract import page as reference_page
from layers_kit.contract.spec import spec_path
from tests.support.process import start_mock
from tests.support.tools import CHROMIUM_ARGS, require_chromium, require_npm_tool

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "reports" / "browser"
FIXTURE_CONTAINER = "cnt_00000000-0000-4000-8000-000000000103"
METHODS = ("get", "put", "post", "patch", "delete")


def _operations(spec: dict) -> list[dict[str, Any]]:
    return [op for item in spec["paths"].values() for m, op in item.items() if m in METHODS]


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(spec_path().read_text())


@pytest.fixture(scope="module")
def browser():
    chromium = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded 2-core CI box renders slowly, not wrongly

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_cache(tmp_path_factory, request):
    """Pages built for this run only (not the user's cache)."""
    require_npm_tool("redocly")
    cache = tmp_path_factory.mktemp("page-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(cache))
    yield cache
    mp.undo()


@pytest.fixture(scope="module")
def mock(page_cache):
    """The real mock; started after XDG_CACHE_HOME points at this run's cache."""
    mp = start_mock("--clock", "manual")
    yield mp
    assert mp.stop() == 0, "".join(mp.output)


class Offline:
    """A page whose requests outside `origin` are aborted; console errors and the blocked
    requests are recorded for the test to assert on."""

    def __init__(self, browser, origin: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.origin = origin

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith((self.origin, "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


def _check_reference(offline: Offline, url: str, spec: dict, shot: str) -> None:
    """Every operation's summary rendered (visible after load), regenerate's description and
    code samples shown, nothing fetched from outside, no console error."""
    from playwright.sync_api import expect

    page = offline.page
    page.goto(url)
    page.wait_for_load_state("load")
    main = page.locator("main")
    operations = _operations(spec)
    assert len(operations) == 11
    for op in operations:
        tag = op["tags"][0].lower()
        page.goto(f"{url}#/{tag}/{op['operationId'].lower()}")
        heading = main.locator("h2", has_text=op["summary"])
        expect(heading.first).to_be_visible(timeout=15_000)

    regenerate = next(op for op in operations if op["operationId"] == "regenerateContent")
    page.goto(f"{url}#/content/regeneratecontent")
    paragraphs = [line for line in regenerate["description"].splitlines() if line.strip()]
    for line in paragraphs[:2]:  # markdown: compare with the rendered text
        shown = re.sub(r"[`*_]", "", line).strip()
        expect(main.get_by_text(shown[:40]).first).to_be_visible()
    samples = regenerate["x-codeSamples"]
    assert {s["label"] for s in samples} >= {"curl", "TypeScript (fetch)", "Python (httpx)"}
    for i, sample in enumerate(samples):
        label = sample.get("label") or sample["lang"]
        if i:  # the first sample is shown; the others are picked from its menu
            previous = samples[i - 1].get("label") or samples[i - 1]["lang"]
            main.get_by_role("button", name=previous, exact=True).first.click()
            page.get_by_role("menuitem").filter(has_text=label).first.click()
        first_line = sample["source"].strip().splitlines()[0][:40]
        expect(main.get_by_text(first_line).first).to_be_visible()
    # the 5xx a client meets (contract 1.2.0), listed with regenerate's responses
    for status in ("500", "502", "503", "504"):
        expect(main.get_by_text(status, exact=True).first).to_be_visible()
    page.wait_for_timeout(300)  # late console errors of the last render
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / shot))
    page.goto(url)  # the overview: how to retry them, how to resolve a job's location
    for heading in ("Server errors and retries", "Job locations"):
        expect(main.get_by_text(heading, exact=True).first).to_be_visible()
    assert offline.errors == [], offline.errors
    assert offline.blocked == [], f"the page reached outside its origin: {offline.blocked}"


def test_published_page_from_disk_works_offline(browser, page_cache, spec, tmp_path):
    html = tmp_path / "index.html"
    reference_page.build(spec_path(), html)
    offline = Offline(browser, "file://")
    try:
        _check_reference(offline, html.as_uri(), spec, "reference-from-disk.png")
    finally:
        offline.close()


def test_mock_serves_the_page_at_reference(browser, mock, spec):
    offline = Offline(browser, mock.url)
    try:
        _check_reference(offline, f"{mock.url}/reference", spec, "reference-from-mock.png")
    finally:
        offline.close()


def test_swagger_ui_try_it_out_on_get_content(browser, mock):
    """As a person would: Authorize with lp_test_full, Try it out on getContent, Execute, 200."""
    from playwright.sync_api import expect

    offline = Offline(browser, mock.url)
    page = offline.page
    try:
        page.goto(f"{mock.url}/docs/")
        page.get_by_role("button", name="Authorize").first.click()
        modal = page.locator(".modal-ux")
        modal.locator("input").first.fill("lp_test_full")  # the first scheme: X-Api-Key
        modal.get_by_role("button", name="Authorize").first.click()
        modal.get_by_role("button", name="Close").first.click()
        op = page.locator("[id$='-getContent']").first
        op.locator(".opblock-summary").first.click()
        op.get_by_role("button", name="Try it out").click()
        op.locator("input[placeholder='containerId']").fill(FIXTURE_CONTAINER)
        op.get_by_role("button", name="Execute").click()
        live = op.locator(".live-responses-table .response").first
        expect(live.locator(".response-col_status")).to_contain_text("200", timeout=15_000)
        body = live.locator(".response-col_description pre").first
        expect(body).to_contain_text(f'"id": "{FIXTURE_CONTAINER}"')
        expect(body).to_contain_text('"status": "completed"')
        SHOTS.mkdir(parents=True, exist_ok=True)
        op.screenshot(path=str(SHOTS / "swagger-ui-get-content.png"))
        assert offline.errors == [], offline.errors
        assert offline.blocked == [], offline.blocked
    finally:
        offline.close()

