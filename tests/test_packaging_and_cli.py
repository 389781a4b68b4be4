"""The commands and `layers-mock`: `--version`, start-up failures, control gating, the README's
fixture example."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from layers_kit.mock.config import Config
from layers_kit.mock.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


# The wheel, the sdist and the installed commands: tests/test_install.py.

@pytest.mark.parametrize("module, prog", [("layers_kit.mock", "layers-mock"),
                                          ("layers_kit.conformance", "layers-conformance")])
def test_version_is_the_distribution_version(module, prog):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                         text=True, timeout=60)
    contract = re.search(r"^info:\n(?:\s+.*\n)*?\s+version: (\S+)",
                         (ROOT / "openapi.yaml").read_text(), re.M).group(1)
    assert (out.returncode, out.stdout.strip()) == (0, f"{prog} {version} (contract {contract})")


def test_readme_shows_the_partner_fixture_test_verbatim():
    """The README's "Test your client against the mock" example is tests/test_partner_fixture.py,
    so the example is run by the suite (and, installed from the wheel, by test_install)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Test your client against the mock", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert block == (ROOT / "tests" / "test_partner_fixture.py").read_text(encoding="utf-8")


def run_mock(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "layers_kit.mock", "--port", "0", *args],
                          capture_output=True, text=True, timeout=30)


def test_broken_fixtures_stop_the_start_with_a_clear_message(tmp_path):
    bad = tmp_path / "fixtures.yaml"
    bad.write_text("orgs: []\nkeys: []\nprojects: []\n")
    out = run_mock("--fixtures", str(bad))
    assert out.returncode == 2 and "'orgs' must be a non-empty list" in out.stderr
    bad.write_text("orgs: [\n")
    out = run_mock("--fixtures", str(bad))
    assert out.returncode == 2 and "cannot read fixtures" in out.stderr
    out = run_mock("--store", "postgres://nowhere")
    assert out.returncode == 2 and "unknown store" in out.stderr


def test_other_fixtures_can_be_loaded(tmp_path):
    text = (ROOT / "mock" / "fixtures.yaml").read_text().replace("lp_test_full", "lp_test_mine")
    custom = tmp_path / "fixtures.yaml"
    custom.write_text(text)
    app = create_app(Config(fixtures=custom))
    with TestClient(app) as c:
        r = c.get("/v1/content/cnt_00000000-0000-4000-8000-000000000103",
                  headers={"X-Api-Key": "lp_test_mine"})
        assert r.status_code == 200
        assert c.get("/v1/content/cnt_00000000-0000-4000-8000-000000000103",
                      headers={"X-Api-Key": "lp_test_full"}).status_code == 401


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3"])
def test_control_api_is_off_beyond_loopback_without_a_token(host):
    with TestClient(create_app(Config(host=host)), base_url="http://127.0.0.1") as c:
        r = c.post("/__mock/reset", json={})
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_admin_token_guards_the_control_api():
    token_ok = "s3cret-long-enough-token"
    with TestClient(create_app(Config(host="0.0.0.0", admin_token=token_ok))) as c:
        assert c.post("/__mock/reset", json={}).status_code == 401
        for token, status in (("nope", 401), (token_ok, 200)):
            r = c.post("/__mock/reset", json={}, headers={"X-Admin-Token": token})
            assert r.status_code == status


def test_banner_lists_keys_and_fixture_ids_and_stops_cleanly():
    from tests.support.process import start_mock

    mp = start_mock()
    try:
        banner = "".join(mp.output)
        for text in ("lp_test_full", "lp_test_readonly", "lp_test_broke", "lp_test_other",
                     "prj_00000000-0000-4000-8000-000000000001",
                     "cnt_00000000-0000-4000-8000-000000000004", "/openapi.yaml", "/docs"):
            assert text in banner, text
    finally:
        assert mp.stop() == 0
    assert "Traceback" not in "".join(mp.output)
