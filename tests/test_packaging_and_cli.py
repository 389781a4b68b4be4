"""The distribution and `layers-mock`: the packaged spec, start-up failures, control gating."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mock.config import Config
from mock.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_spec_and_fixtures(tmp_path):
    """A non-editable install finds the spec: the wheel carries a copy of the root file."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "mock/openapi.yaml" in names and "mock/fixtures.yaml" in names
        assert z.read("mock/openapi.yaml") == (ROOT / "openapi.yaml").read_bytes()
        assert any(n.endswith("entry_points.txt") for n in names)
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "layers-mock = mock.cli:main" in entry_points
    assert "layers-conformance = conformance.cli:main" in entry_points
    assert "layers_conformance = conformance.pytest_plugin" in entry_points


def run_mock(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mock", "--port", "0", *args],
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
    with TestClient(create_app(Config(host="0.0.0.0", admin_token="s3cret"))) as c:
        assert c.post("/__mock/reset", json={}).status_code == 401
        for token, status in (("nope", 401), ("s3cret", 200)):
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
