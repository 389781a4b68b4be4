"""The release in CI (D12): the contract against its latest release, the changelog, the publish
command's files, and the lint command that runs the project's two lint gates."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys

import pytest
import yaml

from layers_kit.contract import changelog, publish, releases
from layers_kit.contract.diff import diff
from layers_kit.contract.document import load
from layers_kit.contract.report import as_text
from layers_kit.contract.spec import spec_path
from tests.support.tools import require_npm_tool


def test_openapi_yaml_keeps_the_promise_of_the_latest_release():
    """The gate `make test` runs: a breaking change needs a new major version (and a release)."""
    latest = releases.latest()
    assert latest is not None, "no release kept in contract/releases"
    result = diff(load(latest), load(spec_path()))
    assert not result.gate_fails, as_text(result, breaking_only=True)


def test_a_released_version_never_changes():
    """Partners pin a version: once `info.version` is released, openapi.yaml may differ from its
    snapshot only under a new version (bump it, add its changelog section, `make release`)."""
    version = load(spec_path()).version
    snapshot = releases.RELEASES / version / "openapi.yaml"
    if snapshot.exists():
        assert snapshot.read_bytes() == spec_path().read_bytes(), (
            f"openapi.yaml changed after {version} was released: bump info.version")
    else:
        assert version not in releases.versions()


def test_each_release_keeps_the_promise_of_the_one_before():
    """1.0.0 -> 1.1.0 is the reshaping for generated clients (component renames, a oneOf
    error union per status, descriptions, x-codeSamples, a second server): nothing on the
    wire, nothing breaking; the unions' narrowing is reported under its own rule."""
    kept = releases.versions()
    assert kept[:2] == ["1.0.0", "1.1.0"]
    for older, newer in itertools.pairwise(kept):
        result = diff(load(releases.RELEASES / older / "openapi.yaml"),
                      load(releases.RELEASES / newer / "openapi.yaml"))
        assert result.breaking == [] or result.major_raised, as_text(result, breaking_only=True)
    first = diff(load(releases.RELEASES / "1.0.0" / "openapi.yaml"),
                 load(releases.RELEASES / "1.1.0" / "openapi.yaml"))
    rules = {c.rule for c in first.changes}
    assert {"response-variant-narrowed", "server-added", "documentation-changed"} <= rules
    assert "response-property-removed" not in rules and "path-removed" not in rules


def test_the_current_version_has_its_changelog_section():
    version = load(spec_path()).version
    body = changelog.section(version)
    assert body is not None, f"contract/CHANGELOG.md has no `## {version}` section"
    assert {"Added", "Changed", "Deprecated"} <= set(changelog.kinds_of(body))


def test_every_release_has_its_changelog_section():
    text = changelog.CHANGELOG.read_text()
    assert set(releases.versions()) <= set(changelog.sections(text))


def test_release_refuses_to_rewrite_a_released_version(tmp_path, monkeypatch):
    spec = tmp_path / "openapi.yaml"
    spec.write_bytes(spec_path().read_bytes())
    root = tmp_path / "releases"
    first = releases.snapshot(spec, root=root)
    assert first.read_bytes() == spec.read_bytes()
    spec.write_text(spec.read_text() + "\n# edited\n")
    with pytest.raises(ValueError, match="never changes"):
        releases.snapshot(spec, root=root)
    assert releases.snapshot(spec, root=root, force=True).read_text().endswith("# edited\n")
    data = yaml.safe_load(spec.read_text())
    data["info"]["version"] = "9.9.9"
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"no section for 9\.9\.9"):
        releases.snapshot(spec, root=root)


def test_publish_writes_the_release_files(tmp_path):
    out = tmp_path / "1.0.0"
    written = publish.publish(spec_path(), out, html=b"<!doctype html><title>page</title>")
    assert [p.name for p in written] == ["openapi.yaml", "openapi.json", "index.html",
                                         "CHANGELOG.md", "SHA256SUMS"]
    as_yaml = yaml.safe_load((out / "openapi.yaml").read_text())
    assert as_yaml == json.loads((out / "openapi.json").read_text())
    assert "$ref" not in json.dumps(as_yaml).replace('"$ref": "#/', "")  # local refs only
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_publish_command_builds_the_offline_page(tmp_path):
    """The real command, as its own process, with Redocly: a page that names no CDN."""
    require_npm_tool("redocly")
    out = tmp_path / "dist"
    done = subprocess.run([sys.executable, "-m", "layers_kit.contract", "publish", "--out",
                           str(out)], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / n) for n in (*publish.FILES, "SHA256SUMS")]
    html = (out / "index.html").read_text()
    assert len(html) > 500_000 and "<script" in html
    assert "cdn.redoc.ly" not in html and "fonts.googleapis" not in html
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_lint_command_runs_both_gates():
    """`layers-contract lint` runs Spectral and Redocly and exits 0 only when both are clean."""
    require_npm_tool("spectral")
    require_npm_tool("redocly")
    done = subprocess.run([sys.executable, "-m", "layers_kit.contract", "lint"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stderr
    counts = [line for line in done.stdout.splitlines()
              if line.startswith(("spectral (", "redocly ("))]
    assert len(counts) == 2, done.stdout
    clean = all(" 0 error(s), 0 warning(s)" in line for line in counts)
    assert done.returncode == (0 if clean else 1), done.stdout


def test_reference_without_redocly_says_what_to_do(monkeypatch, tmp_path):
    """No packaged page and no node: /reference answers 503 with what to do, not a broken page."""
    from starlette.testclient import TestClient

    from layers_kit.contract import page
    from layers_kit.mock.web.app import create_app

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(page, "redocly", lambda: None)
    with pytest.raises(page.PageUnavailable, match="npm ci"):
        page.page_for(spec_path())
    with TestClient(create_app()) as client:
        answer = client.get("/reference")
    assert answer.status_code == 503
    assert "npm ci" in answer.text and "/docs" in answer.text


def test_a_packaged_page_is_served_without_node(monkeypatch, tmp_path):
    """An installed wheel has no node: the page built into it (setup.py) is used when it was
    built from this very contract, and never when the contract differs."""
    from layers_kit.contract import page

    packaged, digest = tmp_path / "reference.html", tmp_path / "reference.sha256"
    packaged.write_text("<html>packaged</html>")
    monkeypatch.setattr(page, "_PACKAGED", packaged)
    monkeypatch.setattr(page, "_PACKAGED_HASH", digest)
    monkeypatch.setattr(page, "redocly", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digest.write_text(page.spec_hash(spec_path().read_bytes()) + "\n")
    assert page.page_for(spec_path()) == b"<html>packaged</html>"
    digest.write_text("0" * 64 + "\n")
    with pytest.raises(page.PageUnavailable):
        page.page_for(spec_path())
