"""The container image (Containerfile, `make image`), run as its users run it: start, the
regenerate workflow, the control API behind its token, `--read-only` with a SQLite volume whose
state survives a restart, a clean stop; and the docs' recipes (`docker run`, `podman run`, the
compose service, the wheel built in a fresh clone) as written.

Runs only with LAYERS_IMAGE_TEST=1: `.ci/run` sets it after `make image` has built the image
from nothing (the base from debootstrap where no registry is reachable). Elsewhere it skips
(building the image takes minutes and root). The image: $LAYERS_IMAGE, default
layers-mock:<the package's version>.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import tomllib
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support import ids

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = os.environ.get("LAYERS_IMAGE", f"layers-mock:{VERSION}")
ENV = {**os.environ, "CONTAINERS_CONF": os.environ.get(
    "CONTAINERS_CONF", str(ROOT / "containers" / "containers.conf"))}
ENABLED = os.environ.get("LAYERS_IMAGE_TEST") == "1"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    not ENABLED, reason="the image test runs in .ci/run after `make image` (LAYERS_IMAGE_TEST=1)")]


def doc_blocks():
    """The docs' blocks this module runs (tests/test_docs.py checks that it runs them all)."""
    from tests.test_docs import ELSEWHERE, blocks

    return blocks(ELSEWHERE)


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, check=False)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def free_port() -> int:
    from tests.test_docs import free_port as port

    return port()


def wait_ready(url: str, timeout: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if httpx.get(f"{url}/openapi.yaml", timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout} s")


class Container:
    """One `podman run -d` of the image on a free loopback port, removed at the end."""

    def __init__(self, *args: str, options: tuple[str, ...] = ()) -> None:
        self.name = f"layers-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        podman("run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:4010", *options,
               IMAGE, *args)
        try:
            self.ready_after = wait_ready(self.url)
        except BaseException:
            print(self.logs())
            self.remove()
            raise

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def stop(self) -> tuple[int, float]:
        """`podman stop` (SIGTERM); the exit code and how long the stop took."""
        start = time.monotonic()
        podman("stop", "-t", "10", self.name)
        took = time.monotonic() - start
        code = podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip()
        return int(code), took

    def remove(self) -> None:
        podman("rm", "-f", self.name, check=False)


@pytest.fixture(scope="module")
def image():
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: .ci/run installs it (apt-get install podman runc)")
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"{IMAGE} is not built: run `make image` first")
    return IMAGE


@pytest.fixture
def container(image):
    made: list[Container] = []

    def start(*args: str, options: tuple[str, ...] = ()) -> Container:
        made.append(Container(*args, options=options))
        return made[-1]

    yield start
    for c in made:
        c.remove()


def regenerate_and_wait(url: str, timeout: float = 20) -> dict:
    headers = {"X-Api-Key": ids.FULL}
    r = httpx.post(f"{url}/v1/content/{ids.CNT_NOT_REQUIRED}/regenerate", headers=headers,
                   json={"brief": {"topic": "From the image"}}, timeout=10)
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + timeout
    while job["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = httpx.get(f"{url}{job['locationUrl']}", headers=headers, timeout=10).json()
    assert job["status"] == "completed", job
    return job


def test_the_image_is_what_the_containerfile_promises(image):
    meta = podman("image", "inspect", "--format",
                  "{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}|"
                  "{{json .Config.Healthcheck}}", image).stdout.strip()
    user, entrypoint, ports, health = meta.split("|", 3)
    assert user == "10001:10001"
    assert entrypoint == '["layers-mock","--host","0.0.0.0"]'
    assert "4010/tcp" in ports
    assert "openapi.yaml" in health


def test_starts_answers_as_non_root_healthy_and_stops_cleanly(container):
    c = container("--stage-seconds", "0.2")
    assert c.ready_after < 10, c.logs()
    assert podman("exec", c.name, "id", "-u").stdout.strip() == "10001"
    assert podman("healthcheck", "run", c.name, check=False).returncode == 0
    reference = httpx.get(f"{c.url}/reference", timeout=10)
    assert reference.status_code == 200 and "<script" in reference.text  # the wheel's page
    # off loopback, without a token, the control API is not there
    assert httpx.post(f"{c.url}/__mock/reset", json={}, timeout=10).status_code == 404
    code, took = c.stop()
    assert (code, took < 5) == (0, True), (code, took, c.logs())
    assert "Traceback" not in c.logs()


def test_the_regenerate_workflow(container):
    c = container("--stage-seconds", "0.2")
    job = regenerate_and_wait(c.url)
    content = httpx.get(f"{c.url}/v1/content/{ids.CNT_NOT_REQUIRED}",
                        headers={"X-Api-Key": ids.FULL}, timeout=10).json()
    assert content["status"] == "completed" and job["result"]["containerId"] == content["id"]
    assert "From the image" in str(content["brief"])


def test_the_control_api_is_on_with_an_admin_token(container):
    token = "s3cret-token-of-the-image-test"
    c = container(options=("-e", f"LAYERS_MOCK_ADMIN_TOKEN={token}"))
    assert httpx.post(f"{c.url}/__mock/reset", json={}, timeout=10).status_code == 401
    ok = httpx.post(f"{c.url}/__mock/reset", json={}, headers={"X-Admin-Token": token},
                    timeout=10)
    assert ok.status_code == 200, ok.text
    assert token not in podman("top", c.name, "args").stdout  # never on a command line


def test_read_only_with_a_sqlite_volume_survives_a_restart(container):
    volume = f"layers-test-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", volume)
    options = ("--read-only", "-v", f"{volume}:/data")
    args = ("--store", "sqlite:////data/mock.db", "--stage-seconds", "0.2")
    try:
        first = container(*args, options=options)
        job = regenerate_and_wait(first.url)
        headers = {"X-Api-Key": ids.FULL}
        before = httpx.get(f"{first.url}/v1/content/{ids.CNT_NOT_REQUIRED}", headers=headers,
                           timeout=10).json()
        assert podman("exec", first.name, "touch", "/home/layers/x", check=False).returncode != 0
        assert first.stop()[0] == 0
        second = container(*args, options=options)
        after = httpx.get(f"{second.url}/v1/content/{ids.CNT_NOT_REQUIRED}", headers=headers,
                          timeout=10).json()
        assert after["caption"] == before["caption"] and after["brief"] == before["brief"]
        again = httpx.get(f"{second.url}{job['locationUrl']}", headers=headers, timeout=10)
        assert again.status_code == 200 and again.json()["status"] == "completed"
        assert second.stop()[0] == 0
    finally:
        for c in podman("ps", "-aq", "--filter", f"volume={volume}", check=False).stdout.split():
            podman("rm", "-f", c, check=False)
        podman("volume", "rm", "-f", volume, check=False)


# -- the docs' recipes, as written -------------------------------------------------------------

DOC_NAMES = ("layers-mock",)
DOC_VOLUMES = ("layers-data",)


def _clean_doc_leftovers() -> None:
    for name in DOC_NAMES:
        podman("rm", "-f", name, check=False)
    for volume in DOC_VOLUMES:
        podman("volume", "rm", "-f", volume, check=False)


def _ports(text: str, port: int) -> str:
    text = text.replace("4010:4010", f"127.0.0.1:{port}:4010")
    return text.replace("127.0.0.1:4010", f"127.0.0.1:{port}")


@pytest.mark.parametrize("block", [b for b in doc_blocks() if b.kind == "image"],
                         ids=lambda b: b.id)
def test_docs_recipe_runs_as_written(block, image, tmp_path):
    """`docker` is podman here (a shim on PATH): the flags the recipes use are common to both."""
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "docker").write_text('#!/bin/sh\nexec podman "$@"\n')
    (shims / "docker").chmod(0o755)
    _clean_doc_leftovers()
    script = _ports(block.body, free_port())
    try:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path,
                              capture_output=True, text=True, timeout=180,
                              env={**ENV, "PATH": f"{shims}{os.pathsep}{ENV['PATH']}"})
        assert done.returncode == 0, f"{block.id}\n{done.stdout}\n{done.stderr}"
        if "regenerate" in block.body:
            assert "202" in done.stdout.split(), done.stdout
        if "__mock/reset" in block.body:  # the control API answered the token
            assert '"error"' not in done.stdout and "{" in done.stdout, done.stdout
    finally:
        _clean_doc_leftovers()


@pytest.mark.parametrize("block", [b for b in doc_blocks() if b.kind == "image-compose"],
                         ids=lambda b: b.id)
def test_docs_compose_service_runs(block, image, tmp_path):
    if shutil.which("podman-compose") is None:
        pytest.fail("podman-compose is missing: .ci/run installs it")
    port = free_port()
    (tmp_path / "compose.yaml").write_text(_ports(block.body, port), encoding="utf-8")
    project = f"layersdocs{uuid.uuid4().hex[:6]}"
    compose = ["podman-compose", "-p", project, "-f", str(tmp_path / "compose.yaml")]
    token = uuid.uuid4().hex  # the reader's `export LAYERS_MOCK_ADMIN_TOKEN=...`
    env = {**ENV, "LAYERS_MOCK_ADMIN_TOKEN": token}
    try:
        up = subprocess.run([*compose, "up", "-d"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=180, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        reset = httpx.post(f"{url}/__mock/reset", json={}, headers={"X-Admin-Token": token},
                           timeout=10)
        assert reset.status_code == 200, reset.text
        regenerate_and_wait(url, timeout=30)
    finally:
        down = subprocess.run([*compose, "down", "-v"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=180, env=env)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in doc_blocks() if b.kind == "fresh-clone"],
                         ids=lambda b: b.id)
def test_docs_install_recipe_in_a_fresh_clone(block, tmp_path):
    """Install's recipe in a copy of the checkout's files (what git tracks, and new files),
    with no .venv and no node_modules: npm and pip reach their registries."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    clone = tmp_path / "clone"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    script = block.body.replace("/tmp/", f"{tmp_path}/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAYERS_", "VIRTUAL_ENV"))}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=clone,
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert re.search(rf"layers-mock {re.escape(VERSION)} \(contract \d+\.\d+\.\d+\)", done.stdout)
    wheel = next((clone / "dist").glob("*.whl"))
    assert "layers_kit/contract/reference.html" in zipfile.ZipFile(wheel).namelist()
    # Run from the installed wheel, release and bump write nothing and name the folder inside
    # the installation they would have written into.
    kit = Path(re.search(r"python3 -m venv (\S+) && \S+/pip install -q dist/", script).group(1))
    installed = sorted(kit.glob("lib/python*/site-packages/layers_kit/contract"))[0]
    before = sorted(p.name for p in (installed / "releases").iterdir())
    spec = (installed / "openapi.yaml").read_bytes()
    for argv in (["release"], ["bump", "minor"]):
        out = subprocess.run([str(kit / "bin" / "layers-contract"), *argv], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "would have written into" in out.stderr and "site-packages" in out.stderr
        assert str(installed / "releases") in out.stderr, out.stderr
    assert sorted(p.name for p in (installed / "releases").iterdir()) == before
    assert (installed / "openapi.yaml").read_bytes() == spec
