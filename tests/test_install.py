"""What users install: the wheel and the sdist, built once, the wheel installed into a fresh venv.

Everything here runs from an empty temporary folder with the venv's own executables, so nothing
resolves from this checkout (its editable install lives in another venv). Offline: the build
uses the test venv's setuptools (`python -m build --no-isolation`), and the venv gets the wheel
with `pip install --no-deps` plus exactly its declared dependency closure
(tests/support/install.py says why and how).

The installed names collide with nothing: the wheel installs one top-level name, `layers_kit`,
so PyPI's `mock` (the unittest.mock backport, installed before or after the wheel) and a
partner's own `mock/` or `conformance/` folder keep their name, and the kit keeps working.
"""

from __future__ import annotations

import ast
import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from layers_kit.mock.launcher import start_mock
from tests.support.install import make_venv, wheel_of_installed

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _setup_folders() -> tuple[str, ...]:
    """setup.py's FOLDERS: the repository's folders that install under the namespace (read, not
    copied, so that a folder added there is compared here too)."""
    for node in ast.parse((ROOT / "setup.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
                "FOLDERS"]:
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no FOLDERS")


PACKAGES = _setup_folders()  # the repository's folders: mock/, conformance/, contract/, ...
NAMESPACE = "layers_kit"  # what they install under (setup.py): layers_kit/mock/, ...
# Made by setup.py at build time: the spec's copy always; the contract's reference page when
# the build finds Redocly (a wheel built from the sdist, as here, does not).
BUILT = {"layers_kit/contract/openapi.yaml"}
BUILT_IF_TOOLS = {"layers_kit/contract/reference.html", "layers_kit/contract/reference.sha256"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]


def _source_files(prefix: str = "") -> set[str]:
    """Every file under the packages (bytecode aside), each path behind `prefix`: the wheel
    holds them under the namespace, the sdist as the repository has them."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (
                    ".pyc", ".pyo", ".so"):
                found.add(prefix + path.relative_to(ROOT).as_posix())
    return found


def _clean_env() -> dict[str, str]:
    """The environment without anything that would point Python back at the checkout."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist, and the wheel that `build` makes from that sdist (not from the checkout)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel, installed non-editable, and its dependencies."""
    return make_venv(dist["wheel"], tmp_path_factory.mktemp("venv") / "env")


@pytest.fixture
def empty(tmp_path) -> Path:
    """An empty working folder outside the checkout."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert not str(folder).startswith(str(ROOT))
    return folder


def _run(venv: Path, *cmd: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = venv / "bin" / cmd[0]
    return subprocess.run([str(exe), *cmd[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_clean_env())


def _assert_pip_check(venv: Path, cwd: Path) -> None:
    """Every Requires-Dist of the venv's distributions satisfied, transitively."""
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                            "check"], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert check.returncode == 0, check.stdout + check.stderr


# -- the artefacts ------------------------------------------------------------------------

def test_wheel_holds_every_module_and_data_file_of_the_source_tree(dist):
    with zipfile.ZipFile(dist["wheel"]) as z:
        names = set(z.namelist())
        shipped = {n for n in names if n.split("/")[0] == NAMESPACE}
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        # one top-level name of its own: no bare mock/, conformance/ or contract/ to collide
        assert {n.split("/")[0] for n in names} == {NAMESPACE, info}
        assert f"{NAMESPACE}/__init__.py" not in names  # a namespace: no package owns it
        source = _source_files(f"{NAMESPACE}/")
        assert source | BUILT <= shipped, sorted((source | BUILT) - shipped)
        assert shipped - source - BUILT <= BUILT_IF_TOOLS, sorted(shipped - source - BUILT)
        assert z.read("layers_kit/contract/openapi.yaml") == (ROOT / "openapi.yaml").read_bytes()
        assert not [n for n in names if n.startswith(("tests/", "bench/"))]
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(z.read(meta_name))
        (ep_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = z.read(ep_name).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "layers-mock = layers_kit.mock.cli:main" in entry_points
    assert "layers-conformance = layers_kit.conformance.cli:main" in entry_points
    assert "layers-contract = layers_kit.contract.cli:main" in entry_points
    assert "layers_conformance = layers_kit.conformance.pytest_plugin" in entry_points
    assert "Framework :: Pytest" in meta.get_all("Classifier")
    assert meta["License-Expression"] == "LicenseRef-Proprietary"
    assert meta["Version"] == VERSION


def test_sdist_holds_what_rebuilds_the_wheel(dist):
    """`build` made the wheel from this sdist, so the wheel test above also proves it suffices;
    here, the files a maintainer rebuilding by hand looks for."""
    with tarfile.open(dist["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    needed = {"pyproject.toml", "setup.py", "MANIFEST.in", "openapi.yaml", "README.md",
              "LICENSE", "mock/fixtures.yaml"} | _source_files()
    assert needed <= names, sorted(needed - names)
    assert not [n for n in names if n.startswith(("tests/", "node_modules/", ".venv/"))]


def _imported_top_level_modules() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {NAMESPACE, "__future__"}


def test_every_directly_imported_distribution_is_declared_with_bounds():
    declared = {canonicalize_name(Requirement(r).name): Requirement(r)
                for r in PYPROJECT["project"]["dependencies"]}
    owners = packages_distributions()
    for module in sorted(_imported_top_level_modules()):
        assert module in owners, f"{module} is imported but no installed distribution has it"
        dists = {canonicalize_name(d) for d in owners[module]}
        assert dists & declared.keys(), f"{module} ({', '.join(dists)}) is not a dependency"
    for name, req in declared.items():
        assert any(s.operator in (">=", "~=", "==") for s in req.specifier), f"{name}: no bound"


# -- the installed wheel, used from an empty folder ---------------------------------------

def test_the_installed_commands_come_from_the_wheel_and_know_their_version(venv, empty):
    """Imports resolve inside the venv; test-only tools (build, ruff, playwright) are absent."""
    where = _run(venv, "python", "-c", "from layers_kit import conformance, contract, mock; "
                 "print(mock.__file__, conformance.__file__, contract.__file__)", cwd=empty)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(venv)), line
    absent = _run(venv, "python", "-c", "import importlib.util as u; print([m for m in "
                  "('build', 'ruff', 'playwright', 'mock') if u.find_spec(m)])", cwd=empty)
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr
    for command in ("layers-mock", "layers-conformance"):
        out = _run(venv, command, "--version", cwd=empty)
        assert out.returncode == 0 and re.fullmatch(  # the package's and the contract's version
            rf"{command} {re.escape(VERSION)} \(contract \d+\.\d+\.\d+\)", out.stdout.strip())
    contract = _run(venv, "layers-contract", "version", cwd=empty)  # reads the packaged spec
    assert contract.returncode == 0, contract.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", contract.stdout.strip()), contract.stdout
    _assert_pip_check(venv, empty)


def test_the_installed_mock_answers_a_regenerate_with_202(venv, empty):
    running = start_mock(command=[str(venv / "bin" / "layers-mock")], cwd=empty,
                         env=_clean_env())
    try:
        r = httpx.post(f"{running.url}/v1/content/cnt_00000000-0000-4000-8000-000000000103"
                       "/regenerate", headers={"X-Api-Key": "lp_test_full"},
                       json={"brief": {"topic": "From the wheel"}}, timeout=30)
        assert r.status_code == 202, r.text
        assert r.json()["kind"] == "content_regenerate"
    finally:
        assert running.stop() == 0, "".join(running.output)
    assert "Traceback" not in "".join(running.output)


def test_the_installed_kit_checks_the_bundled_mock_and_writes_its_reports(venv, empty):
    out = _run(venv, "layers-conformance", "run", "--mock", "--quick",
               "--junit-xml", "reports/conformance.xml", "--report", "reports/conformance.html",
               cwd=empty, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    junit = (empty / "reports" / "conformance.xml").read_text(encoding="utf-8")
    assert re.search(r'<testsuite[^>]+tests="[1-9]', junit)
    assert "R10" in (empty / "reports" / "conformance.html").read_text(encoding="utf-8")


def test_the_installed_plugin_runs_the_readme_example(venv, empty):
    """The README's example test, run by the venv's pytest through the installed plugin."""
    shutil.copy(ROOT / "tests" / "test_partner_fixture.py", empty / "test_my_client.py")
    out = _run(venv, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "test_my_client.py", cwd=empty)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert re.search(r"\b4 passed\b", out.stdout), out.stdout[-2000:]


# -- the installed names collide with nothing ---------------------------------------------
# Before layers_kit, the wheel installed top-level mock/, conformance/ and contract/: PyPI's
# `mock` overwrote the kit (or the kit it), and a partner's own mock/ or conformance/ folder
# broke the plugin. Each case below runs, as a partner would, the README's example test and
# the test below through the venv's pytest, then the commands and `pip check`.

# Whose `mock` the partner's session imports; EXPECTED is set per case ("pypi" or "partner").
WHOSE_MOCK_TEST = '''
"""The partner's `mock` next to the kit's plugin and `serve` (written by tests/test_install.py)."""

import os
import sys
import sysconfig
from importlib.metadata import files, version
from pathlib import Path

import httpx
import mock

from layers_kit.mock import serve

EXPECTED = None
SITE = Path(sysconfig.get_paths()["purelib"]).resolve()
REGENERATE = "/v1/content/cnt_00000000-0000-4000-8000-000000000103/regenerate"


def test_mock_is_still_the_partners_after_the_plugin_and_its_fixture(layers_mock, request):
    plugin = request.config.pluginmanager.get_plugin("layers_conformance")
    assert Path(plugin.__file__).resolve().is_relative_to(SITE / "layers_kit" / "conformance")
    assert layers_mock.url.startswith("http://127.0.0.1:")
    assert sys.modules["mock"] is mock
    if EXPECTED == "pypi":  # PyPI's unittest.mock backport, pip-installed in site-packages
        assert Path(mock.__file__).resolve() == SITE / "mock" / "__init__.py"
        assert version("mock").startswith("5.")
        assert mock.patch.__module__ == "mock.mock"
        with mock.patch("os.getcwd", return_value="patched"):
            assert os.getcwd() == "patched"
        kit = {f.parts[0] for f in files("layers-regenerate-kit")}
        assert not kit & {f.parts[0] for f in files("mock")}, kit  # neither overwrites
    else:  # the partner folder's own packages, first on sys.path
        import conformance

        here = Path.cwd().resolve()
        assert Path(mock.__file__).resolve() == here / "mock" / "__init__.py"
        assert mock.patch("os.getcwd") == "the partner's patch of os.getcwd"
        assert Path(conformance.__file__).resolve() == here / "conformance" / "__init__.py"
        assert conformance.OWNER == "partner"


def test_the_kits_serve_serves():
    with serve() as m:
        r = httpx.post(m.url + REGENERATE, headers={"X-Api-Key": m.keys["full"]},
                       json={"brief": {"topic": "Side by side"}}, timeout=30)
        assert r.status_code == 202, r.text
        assert r.json()["kind"] == "content_regenerate"
'''


def _check_as_a_partner(venv: Path, folder: Path, *, expected: str) -> None:
    shutil.copy(ROOT / "tests" / "test_partner_fixture.py", folder / "test_my_client.py")
    (folder / "test_whose_mock.py").write_text(
        WHOSE_MOCK_TEST.replace("EXPECTED = None", f"EXPECTED = {expected!r}"), encoding="utf-8")
    out = _run(venv, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "test_my_client.py", "test_whose_mock.py", cwd=folder)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert re.search(r"\b6 passed\b", out.stdout), out.stdout[-2000:]
    for command in ("layers-mock", "layers-conformance"):
        out = _run(venv, command, "--version", cwd=folder)
        assert out.returncode == 0 and re.fullmatch(  # the package's and the contract's version
            rf"{command} {re.escape(VERSION)} \(contract \d+\.\d+\.\d+\)", out.stdout.strip()
        ), out.stderr
    _assert_pip_check(venv, folder)


@pytest.fixture(scope="module")
def pypi_mock_wheel(tmp_path_factory) -> Path:
    """PyPI's `mock` as a wheel file, offline: rebuilt from the test venv's installed copy
    (the `test` extra); tests/support/install.py's wheel_of_installed says why this way."""
    return wheel_of_installed("mock", tmp_path_factory.mktemp("pypi-mock"))


@pytest.mark.parametrize("order", ["before", "after"])
def test_pypis_mock_installed_before_or_after_the_wheel_leaves_both_working(
        order, dist, pypi_mock_wheel, tmp_path, empty):
    """A real `pip install` of each wheel, in this order, into one fresh venv."""
    venv = make_venv(dist["wheel"], tmp_path / "env", **{order: [pypi_mock_wheel]})
    _check_as_a_partner(venv, empty, expected="pypi")


# A partner repository's own packages of the same names, with something recognisable in each.
PARTNER_MOCK = '''"""The partner's own mock package (nothing to do with PyPI's or the kit's)."""


def patch(target):
    return f"the partner's patch of {target}"
'''
PARTNER_CONFORMANCE = 'OWNER = "partner"\n'


def test_a_partner_folders_own_mock_and_conformance_break_nothing(venv, empty):
    """Run from the partner's folder, its own packages come first on sys.path."""
    for name, text in (("mock", PARTNER_MOCK), ("conformance", PARTNER_CONFORMANCE)):
        (empty / name).mkdir()
        (empty / name / "__init__.py").write_text(text, encoding="utf-8")
    _check_as_a_partner(venv, empty, expected="partner")
