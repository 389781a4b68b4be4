"""The release flow (D12): `layers-contract bump` and `layers-contract release` refuse exactly
what the release gate (tests/test_contract_release.py) refuses, so whatever they write passes
the gate; they write only into a checkout; their errors name contract/CHANGELOG.md by its path;
`--version` names the package and the contract.

Every case runs on a copy: a throwaway checkout (pyproject.toml, setup.py, openapi.yaml,
contract/CHANGELOG.md and contract/releases/ with the real snapshots) in a temporary folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from layers_kit.contract import changelog, cli, releases
from layers_kit.contract.spec import spec_path
from tests import test_contract_release as gate

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CONTRACT = yaml.safe_load(spec_path().read_text())["info"]["version"]


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A copy of the repository's release state, which the commands and the gate both use."""
    top = tmp_path / "checkout"
    (top / "contract").mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "openapi.yaml"):
        shutil.copyfile(ROOT / name, top / name)
    shutil.copyfile(changelog.CHANGELOG, top / "contract" / "CHANGELOG.md")
    for version in releases.versions():
        (top / "contract" / "releases" / version).mkdir(parents=True)
        shutil.copyfile(releases.RELEASES / version / "openapi.yaml",
                        top / "contract" / "releases" / version / "openapi.yaml")
    monkeypatch.setattr(releases, "RELEASES", top / "contract" / "releases")
    monkeypatch.setattr(changelog, "CHANGELOG", top / "contract" / "CHANGELOG.md")
    monkeypatch.setattr(cli, "_current", lambda: top / "openapi.yaml")
    monkeypatch.setattr(gate, "spec_path", lambda: top / "openapi.yaml")
    monkeypatch.chdir(top)
    return top


def run_gate() -> list[str]:
    """The gate's own tests, run on the checkout: the names of those that fail."""
    failed = []
    for test in (gate.test_openapi_yaml_keeps_the_promise_of_the_latest_release,
                 gate.test_a_released_version_never_changes,
                 gate.test_each_release_keeps_the_promise_of_the_one_before,
                 gate.test_the_current_version_has_its_changelog_section,
                 gate.test_every_release_has_its_changelog_section):
        try:
            test()
        except AssertionError:
            failed.append(test.__name__)
    return failed


def edit_spec(top: Path, change) -> None:
    data = yaml.safe_load((top / "openapi.yaml").read_text())
    change(data)
    (top / "openapi.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def fill_section(top: Path, version: str, kinds=("Added", "Changed", "Deprecated")) -> None:
    path = top / "contract" / "CHANGELOG.md"
    text = path.read_text()
    body = f"## {version}\n\n" + "".join(f"### {k}\n- a change.\n\n" for k in kinds)
    start = text.index(f"## {version}\n") if f"## {version}\n" in text else None
    if start is None:
        first = text.index("\n## ") + 1
        text = text[:first] + body + text[first:]
    else:
        end = text.index("\n## ", start + 1) + 1
        text = text[:start] + body + text[end:]
    path.write_text(text)


def release(capsys) -> tuple[int, str]:
    code = cli.main(["release"])
    out = capsys.readouterr()
    return code, out.out + out.err


def drop_an_operation(data: dict) -> None:
    del data["paths"]["/v1/jobs/{jobId}/cancel"]  # breaking: path-removed


def test_the_repository_passes_its_own_gate_on_the_copy(checkout):
    assert run_gate() == []


def test_bump_raises_only_the_version_line_and_writes_the_skeleton(checkout, capsys):
    before = (checkout / "openapi.yaml").read_text().splitlines()
    assert cli.main(["bump", "minor"]) == 0
    major, minor, _ = (int(p) for p in CONTRACT.split("."))
    new = f"{major}.{minor + 1}.0"
    out = capsys.readouterr().out
    assert f"info.version {CONTRACT} -> {new}" in out and "contract/CHANGELOG.md" in out
    after = (checkout / "openapi.yaml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [(f"  version: {CONTRACT}", f"  version: {new}")]
    body = changelog.section(new)
    assert changelog.kinds_of(body) == ["Added", "Changed", "Deprecated"]
    # the skeleton passes the gate's heading rule; the new version is not released yet
    assert run_gate() == []
    code, text = release(capsys)
    assert code == 0, text
    assert (checkout / "contract" / "releases" / new / "openapi.yaml").read_bytes() == (
        checkout / "openapi.yaml").read_bytes()
    assert run_gate() == []


def test_bump_twice_before_a_release_counts_from_the_latest_release(checkout, capsys):
    assert cli.main(["bump", "minor"]) == 0
    assert cli.main(["bump", "major"]) == 0
    major = int(CONTRACT.split(".")[0])
    assert yaml.safe_load((checkout / "openapi.yaml").read_text())["info"]["version"] == (
        f"{major + 1}.0.0")
    text = (checkout / "contract" / "CHANGELOG.md").read_text()
    assert f"## {major}.{int(CONTRACT.split('.')[1]) + 1}.0" not in text  # renamed, not kept
    assert changelog.kinds_of(changelog.section(f"{major + 1}.0.0")) == [
        "Added", "Changed", "Deprecated", "Removed"]


def test_release_refuses_a_version_without_its_section_naming_the_changelog(checkout, capsys):
    edit_spec(checkout, lambda d: d["info"].update(version="1.9.0"))
    code, text = release(capsys)
    assert code == 2
    assert "contract/CHANGELOG.md has no section for 1.9.0" in text
    assert not (checkout / "contract" / "releases" / "1.9.0").exists()
    assert "test_the_current_version_has_its_changelog_section" in run_gate()


def test_release_refuses_a_section_without_the_three_headings(checkout, capsys):
    assert cli.main(["bump", "patch"]) == 0
    new = yaml.safe_load((checkout / "openapi.yaml").read_text())["info"]["version"]
    fill_section(checkout, new, kinds=("Added", "Changed"))
    code, text = release(capsys)
    assert code == 2
    assert f"contract/CHANGELOG.md: the section for {new} lacks `### Deprecated`" in text
    assert "test_the_current_version_has_its_changelog_section" in run_gate()
    fill_section(checkout, new)
    assert release(capsys)[0] == 0
    assert run_gate() == []


def test_release_refuses_a_breaking_change_unless_the_major_rose(checkout, capsys):
    assert cli.main(["bump", "minor"]) == 0
    edit_spec(checkout, drop_an_operation)
    code, text = release(capsys)
    assert code == 2
    assert "breaking change(s)" in text and "path-removed" in text
    assert "layers-contract bump major" in text
    # what the command refused, the gate refuses too
    assert "test_openapi_yaml_keeps_the_promise_of_the_latest_release" in run_gate()
    assert cli.main(["bump", "major"]) == 0
    capsys.readouterr()
    code, text = release(capsys)
    assert code == 0, text
    assert run_gate() == []


def test_release_never_rewrites_a_released_version(checkout, capsys):
    edit_spec(checkout, lambda d: d["info"].update(description=d["info"]["description"] + "!"))
    code, text = release(capsys)
    assert code == 2 and "never changes" in text and "layers-contract bump" in text
    assert "test_a_released_version_never_changes" in run_gate()


def test_release_refuses_a_version_below_the_latest_release(checkout, capsys):
    edit_spec(checkout, lambda d: d["info"].update(version="1.1.5"))
    fill_section(checkout, "1.1.5")
    code, text = release(capsys)
    assert code == 2 and "below the latest release" in text


def test_release_and_bump_refuse_to_write_into_an_installed_package(tmp_path, monkeypatch,
                                                                     capsys):
    """Run from a wheel, the releases folder is inside site-packages: nothing is written there,
    and the message names the folder it would have written into."""
    installed = tmp_path / "site-packages" / "layers_kit" / "contract"
    (installed / "releases").mkdir(parents=True)
    shutil.copyfile(spec_path(), installed / "openapi.yaml")
    monkeypatch.setattr(releases, "RELEASES", installed / "releases")
    monkeypatch.setattr(cli, "_current", lambda: installed / "openapi.yaml")
    for argv in (["release"], ["bump", "minor"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"would have written into {installed / 'releases'}" in err, err
        assert "installed package" in err
    assert list((installed / "releases").iterdir()) == []
    assert (installed / "openapi.yaml").read_bytes() == spec_path().read_bytes()


@pytest.mark.parametrize("command", ["layers-mock", "layers-conformance", "layers-contract"])
def test_version_names_the_package_and_the_contract(command):
    exe = Path(sys.executable).parent / command
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, f"{command} {VERSION} (contract {CONTRACT})")
