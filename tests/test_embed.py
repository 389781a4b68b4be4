"""The mock from Python: `mock.serve`, the `layers_mock` fixture's options, and what each costs.

The plugin is installed in every pytest session of a partner's environment, so these also
show that a session that does not use it imports nothing heavy (D11).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from layers_kit.mock import serve
from layers_kit.mock.embed import MockControlError

HEAVY = ("openapi_core", "httpx", "schemathesis", "connexion", "starlette", "uvicorn")
CONTAINER = "cnt_00000000-0000-4000-8000-000000000103"


def test_serve_runs_the_real_mock_and_stops_it_by_pid():
    with serve() as m:
        assert m.url.startswith("http://127.0.0.1:")
        assert m.keys == {"full": "lp_test_full", "readonly": "lp_test_readonly",
                          "broke": "lp_test_broke", "other": "lp_test_other",
                          **{k: v for k, v in m.keys.items()
                             if k not in ("full", "readonly", "broke", "other")}}
        api = httpx.Client(base_url=m.url, headers={"X-Api-Key": m.keys["full"]})
        job = api.post(f"/v1/content/{CONTAINER}/regenerate").json()
        assert api.get(job["locationUrl"]).json()["stage"] == "queued"
        m.advance(2.5)  # 1-second stages by default: the third stage
        assert api.get(job["locationUrl"]).json()["stage"] == "generating_visuals"
        assert [e["operationId"] for e in m.requests(operation_id="getJob")] == ["getJob"] * 2
        assert len(m.requests(limit=1)) == 1

        m.fault(match={"operationId": "getContent"}, status=503, count=5)
        assert api.get(f"/v1/content/{CONTAINER}").status_code == 503
        m.clear_faults()
        assert api.get(f"/v1/content/{CONTAINER}").status_code == 200

        m.reset()  # the running job is gone with the rest of the state
        assert api.get(job["locationUrl"]).status_code == 404
        assert [e["status"] for e in m.requests()] == [404]  # the journal starts afresh
        with pytest.raises(MockControlError) as err:
            m.fault(match={"operationId": "getContent"})  # neither status, code, delay nor drop
        assert err.value.status == 422
        pid = m.pid
        api.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert m.stop() == 0  # stopping again is harmless


def test_serve_with_a_real_clock_refuses_to_advance():
    with serve(clock="real", stage_seconds=0.5) as m:
        assert "clock real" in m.output and "stage 0.5s" in m.output
        with pytest.raises(MockControlError) as err:
            m.advance(1)
        assert err.value.status == 409


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_importing_mock_and_serve_pulls_in_no_web_stack(tmp_path):
    out = _python(f"import sys, layers_kit.mock; from layers_kit.mock import serve; "
                  f"print([m for m in {HEAVY!r} if m in sys.modules])", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _pytest(tmp_path: Path, test: str, *args: str, conftest: str = "",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """pytest in an unrelated folder (its own rootdir, none of this project's conftest)."""
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent(test), encoding="utf-8")
    if conftest:
        (tmp_path / "conftest.py").write_text(textwrap.dedent(conftest), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, **(env or {})})


_REPORT_MODULES = f"""
    import json, os, sys

    def test_unrelated(request):
        assert request.config.pluginmanager.has_plugin("layers_conformance")
        loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
        with open(os.environ["LAYERS_REPORT"], "w") as fh:
            json.dump(loaded, fh)
"""


def test_a_session_without_layers_options_imports_none_of_the_kit(tmp_path):
    """Our plugin alone (other plugins' autoload off): nothing heavy is imported."""
    report = tmp_path / "loaded.json"
    out = _pytest(tmp_path, _REPORT_MODULES, "-p", "layers_conformance",
                  env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "LAYERS_REPORT": str(report)})
    assert out.returncode == 0, out.stdout[-3000:]
    assert json.loads(report.read_text()) == []


def test_with_every_installed_plugin_only_schemathesis_loads_itself(tmp_path):
    """As a partner's session runs: Schemathesis (a dependency) registers its own pytest plugin,
    which imports schemathesis; nothing of ours is imported (`-p no:schemathesis` skips it)."""
    report = tmp_path / "loaded.json"
    out = _pytest(tmp_path, _REPORT_MODULES, env={"LAYERS_REPORT": str(report)})
    assert out.returncode == 0, out.stdout[-3000:]
    assert set(json.loads(report.read_text())) <= {"schemathesis"}


_SHOW_BANNER = """
    def test_mock(layers_mock):
        print("BANNER", layers_mock.output)
"""


def test_layers_mock_options_come_from_the_command_line(tmp_path):
    db = tmp_path / "mock.db"
    out = _pytest(tmp_path, _SHOW_BANNER, "-s", "--layers-mock-store", f"sqlite:///{db}",
                  "--layers-mock-stage-seconds", "3")
    assert out.returncode == 0, out.stdout[-3000:]
    assert f"store sqlite:///{db}" in out.stdout and "stage 3s" in out.stdout
    assert "clock manual" in out.stdout and db.exists()


def test_a_project_can_override_layers_mock_options(tmp_path):
    conftest = """
        import pytest

        @pytest.fixture(scope="session")
        def layers_mock_options():
            return {"stage_seconds": 0.25, "args": ("--validate-responses",)}
    """
    out = _pytest(tmp_path, _SHOW_BANNER, "-s", conftest=conftest)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "stage 0.25s" in out.stdout and "clock manual" in out.stdout
