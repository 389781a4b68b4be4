"""A browser client on another origin follows `Location` to the job (contract 1.2.0, "Job
locations"): headless Debian chromium, a page served from one loopback origin, the real mock on
another.

The page knows only the URL it calls. It resolves `Location` the way the contract says, against
the URL of the response that carried it, and polls the job there until it ends; resolving it
against the page's own URL (the mistake the contract warns of) names the page's origin instead.
"""

from __future__ import annotations

import pytest

from tests.support import pages
from tests.support.process import start_mock
from tests.support.tools import CHROMIUM_ARGS, require_chromium

pytestmark = pytest.mark.e2e

CONTAINER = "cnt_00000000-0000-4000-8000-000000000103"
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>partner app</title>
<script>
async function regenerateAndFollow(regenerateUrl, key) {
  const started = await fetch(regenerateUrl, {
    method: 'POST',
    headers: {'X-Api-Key': key, 'Content-Type': 'application/json',
              'Idempotency-Key': crypto.randomUUID()},
    body: '{}',
  });
  const location = started.headers.get('Location');
  const body = await started.json();
  const jobUrl = new URL(location, started.url).href;  // the contract's rule
  for (let i = 0; i < 400; i++) {
    const job = await (await fetch(jobUrl, {headers: {'X-Api-Key': key}})).json();
    if (job.status !== 'running') {
      return {status: started.status, location, locationUrl: body.locationUrl, jobUrl,
              naive: new URL(location, window.location.href).href, final: job.status,
              jobId: job.jobId};
    }
    await new Promise(r => setTimeout(r, 25));
  }
  return {status: started.status, location, jobUrl, final: 'still running'};
}
</script>
"""


@pytest.fixture
def page_origin():
    """The partner's page, on its own loopback port (another origin than the mock's)."""
    with pages.page_origin(PAGE.encode()) as origin:
        yield origin


def test_a_page_on_another_origin_follows_location_to_the_job(page_origin):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    mock = start_mock("--clock", "real", "--stage-seconds", "0.02")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{page_origin}/index.html")
                out = page.evaluate("([u, k]) => regenerateAndFollow(u, k)",
                                    [f"{mock.url}/v1/content/{CONTAINER}/regenerate",
                                     "lp_test_full"])
            finally:
                browser.close()
    finally:
        assert mock.stop() == 0, "".join(mock.output)
    assert errors == []
    assert out["status"] == 202
    assert out["location"] == out["locationUrl"] == f"/v1/jobs/{out['jobId']}"  # R1
    assert out["jobUrl"] == f"{mock.url}/v1/jobs/{out['jobId']}"
    assert out["final"] == "completed"
    # the mistake the contract warns of: the page's own origin, where no job lives
    assert out["naive"].startswith(page_origin) and not out["naive"].startswith(mock.url)
