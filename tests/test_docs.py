"""The documentation runs as written: every fenced block of README.md and docs/ says how it is
tested (`<!-- test: KIND -->` on the line before it) and is run here, or by tests/test_image.py
(LAYERS_IMAGE_TEST=1, after `make image`), or, for `make test` itself, by .ci/run. And the site
that `make docs` builds: every page reachable, its search working, no request outside it, in
Chromium. The markers: docs/guides/docs-tests.md.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import ids
from tests.support.process import start_mock
from tests.support.tools import CHROMIUM_ARGS, require_chromium, require_command, require_npm_tool

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERATED = {"docs/reference/rules.md"}  # written by the rule catalogue's tool, no commands
KINDS = {  # kind -> the fence languages it may mark
    "sh": {"sh"}, "serve": {"sh"}, "ci": {"sh"}, "python": {"python"}, "pytest": {"python"},
    "same-as": {"python"}, "waivers": {"yaml"}, "github-steps": {"yaml"}, "image": {"sh"},
    "image-compose": {"yaml"}, "fresh-clone": {"sh"}, "not-a-command": {"text"},
}
SH_OPTIONS = {"own-mock", "checkout"}
ELSEWHERE = {"image", "image-compose", "fresh-clone"}  # run by tests/test_image.py
MOCK_URL = "http://127.0.0.1:4010"
FENCE = re.compile(r"^(?P<indent> {0,3})```(?P<lang>[\w-]*)[^\n]*\n"
                   r"(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
MARK = re.compile(r"<!--\s*test:\s*(?P<spec>[^>]*?)\s*-->")


@dataclass
class Block:
    path: str  # relative to the repository
    line: int
    lang: str
    body: str
    kind: str | None
    args: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [f for f in files if f.relative_to(ROOT).as_posix() not in GENERATED]


def blocks(kinds: set[str] | None = None) -> list[Block]:
    """Every fenced block of the docs, with the marker on the line before it (None: none)."""
    found = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARK.fullmatch(before.strip())
            words = shlex.split(mark.group("spec")) if mark else []
            block = Block(path.relative_to(ROOT).as_posix(), text.count("\n", 0, match.start()) + 1,
                          match.group("lang"), match.group("body"),
                          words[0] if words else None, words[1:])
            if kinds is None or block.kind in kinds:
                found.append(block)
    return found


def commands(body: str) -> list[str]:
    """The command lines of a block (continuations joined, comments and blanks dropped)."""
    joined = body.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- every block is accounted for ------------------------------------------------------------

def test_every_block_says_how_it_is_tested():
    unmarked, unknown = [], []
    for b in blocks():
        if b.kind is None:
            unmarked.append(b.id)
        elif b.kind not in KINDS or b.lang not in KINDS[b.kind]:
            unknown.append(f"{b.id} ({b.kind} on ```{b.lang})")
        elif b.kind == "sh" and not set(b.args) <= SH_OPTIONS:
            unknown.append(f"{b.id} (sh {b.args})")
    assert unmarked == [], f"fenced blocks without <!-- test: ... -->: {unmarked}"
    assert unknown == [], f"markers this test does not know: {unknown}"
    assert len(blocks()) >= 25  # the docs' command blocks are found at all


def test_the_readme_is_a_front_door():
    """A few hundred lines, one path per audience, and the set-up in two commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    for heading in ("## Set-up: two commands on a fresh machine", "## If you write a client",
                    "## If you run CI against staging", "## If you publish the contract"):
        assert heading in text
    setup = [c for b in blocks({"serve", "ci"}) if b.path == "README.md" for c in commands(b.body)]
    assert setup == ["make mock", "make test"]


def test_every_docs_page_is_in_the_site_navigation():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    listed = set()

    def walk(items):
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                walk(value)
            else:
                listed.add(value)
    walk(nav)
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - listed == set(), "pages missing from mkdocs.yml's nav"


def test_ci_blocks_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for b in blocks({"ci"}):
        for command in commands(b.body):
            assert command in [line.strip() for line in ci], f"{b.id}: .ci/run never runs {command}"


def test_blocks_run_elsewhere_are_run_by_the_image_test():
    from tests import test_image

    mine = {b.id for b in blocks(ELSEWHERE)}
    assert mine, "the container guide's recipes are marked"
    assert {b.id for b in test_image.doc_blocks()} == mine


@pytest.mark.parametrize("block", blocks({"same-as"}), ids=lambda b: b.id)
def test_same_as_blocks_are_the_files_the_suite_runs(block):
    assert block.body == (ROOT / block.args[0]).read_text(encoding="utf-8")


@pytest.mark.parametrize("block", blocks({"waivers"}), ids=lambda b: b.id)
def test_waiver_blocks_load(block, tmp_path):
    from layers_kit.conformance import waivers

    path = tmp_path / "waivers.yaml"
    path.write_text(block.body, encoding="utf-8")
    assert [w.id for w in waivers.load(path)]


# -- running the blocks ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mock():
    """A real mock with a real clock and short stages, as a reader's `make mock` (the kit's
    runs need jobs that end by themselves)."""
    m = start_mock("--stage-seconds", "0.05")
    yield m
    assert m.stop() == 0, "".join(m.output)


def reset(mock) -> None:
    httpx.post(f"{mock.url}/__mock/reset", json={}, timeout=10).raise_for_status()


def environment(mock, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A reader's shell: the kit on PATH, the target and its keys in the kit's variables."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("LAYERS_", "PYTEST_", "COV_")) and k != "PYTHONPATH"}
    env = {**clean, "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}",
           "LAYERS_BASE_URL": mock.url, "LAYERS_API_KEY": ids.FULL,
           "LAYERS_PROJECT_ID": ids.PRJ_AUTO, "LAYERS_READONLY_KEY": ids.READONLY,
           "LAYERS_OTHER_ORG_KEY": ids.OTHER, "LAYERS_OTHER_PROJECT_ID": ids.PRJ_OTHER,
           "LAYERS_BROKE_KEY": ids.BROKE, "LAYERS_BROKE_CONTAINER_ID": ids.CNT_BROKE,
           "LAYERS_MODERATION_TEXT": "moderation-test-block",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return {**env, **(extra or {})}


def substitute(text: str, tmp: Path, url: str | None = None,
               ports: dict[int, int] | None = None) -> str:
    text = text.replace("/tmp/", f"{tmp}/")
    if url:
        text = text.replace(MOCK_URL, url)
    for doc_port, port in (ports or {}).items():
        text = re.sub(rf"(?<![\d]){doc_port}(?![\d])", str(port), text)
    return text


def run_bash(script: str, *, cwd: Path, env: dict[str, str], timeout: float = 240
             ) -> subprocess.CompletedProcess:
    """`bash -e` in a process group of its own; whatever it left running is killed after."""
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s:\n{out[-3000:]}\n{err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _unique(found: list[Block]) -> list[Block]:
    """Blocks with the same text run once (the README repeats a tutorial's command)."""
    seen, out = set(), []
    for b in found:
        if (b.kind, tuple(b.args), b.body) not in seen:
            seen.add((b.kind, tuple(b.args), b.body))
            out.append(b)
    return out


def _by_page(found: list[Block]) -> dict[str, list[Block]]:
    pages: dict[str, list[Block]] = {}
    for b in found:
        pages.setdefault(b.path, []).append(b)
    return pages


def _class_name(prefix: str, page: str) -> str:
    return prefix + "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", page[:-3]) if w)


def run_sh_block(block: Block, mock, tmp_path: Path) -> subprocess.CompletedProcess:
    require_command("curl")
    reset(mock)
    if "own-mock" in block.args:  # its servers on free ports: 4010 and 4020 in the text
        ports = {4010: free_port(), 4020: free_port()}
        script = re.sub(r"\blayers-mock\b(?![^\n&|;]*--port)", "layers-mock --port 4010",
                        block.body)
        script = substitute(script, tmp_path, ports=ports)
    else:
        script = substitute(block.body, tmp_path, mock.url)
    done = run_bash(script, cwd=tmp_path, env=environment(mock))
    assert done.returncode == 0, f"{block.id}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def _sh_class(page: str, found: list[Block]) -> type:
    """One class per page (pytest-xdist's loadscope spreads classes over the workers): its
    `sh` blocks, each against the module's mock (or servers of its own)."""
    heavy = any("layers-conformance run" in b.body or "pytest --layers" in b.body for b in found)
    marks = [pytest.mark.e2e, *([pytest.mark.slow] if heavy else [])]

    @pytest.mark.parametrize("block", found, ids=lambda b: b.id)
    def test_sh_block_runs(self, block, mock, tmp_path):
        done = run_sh_block(block, mock, tmp_path)
        if "RATE_LIMITED" in block.body or "etry-After" in block.body \
                or "retry-after" in block.body:
            # 20 starts pass (202, then busy), the 21st is limited, the retry goes through
            assert re.search(r"\b202( 409){19} HTTP/1\.1 429", done.stdout), done.stdout
            assert re.search(r"(?i)retry-after: 3", done.stdout), done.stdout
            assert re.search(r'"now":"[^"]+"\}202\b', done.stdout), done.stdout
        if "/__proxy/" in block.body:
            assert (tmp_path / "reports" / "proxy.json").is_file(), done.stdout

    return type(_class_name("TestSh", page), (), {"test_sh_block_runs": test_sh_block_runs,
                                                   "pytestmark": marks})


for _page, _found in _by_page(_unique([b for b in blocks({"sh"}) if "checkout" not in b.args])
                              ).items():
    globals()[_class_name("TestSh", _page)] = _sh_class(_page, _found)


@pytest.mark.e2e
class TestServe:
    @pytest.mark.parametrize(
        "line", list({c: (b, c) for b in reversed(_unique(blocks({"serve"})))
                      for c in commands(b.body)}.values()),
        ids=lambda bc: f"{bc[0].id}:{bc[1][:40]}")
    def test_serve_lines_answer_and_stop_cleanly(self, line, tmp_path):
        _serve_line(line, tmp_path)


def _serve_line(line, tmp_path):
    """A server as a reader starts it: it answers (or exits 0 by itself, like `--help`), then
    stops with exit 0 on Ctrl-C (SIGINT to the process group, as a terminal sends it)."""
    block, command = line
    ports = {4010: free_port(), 4020: free_port()}
    command = substitute(command, tmp_path, ports=ports)
    if command.startswith("make mock"):
        command += f' ARGS="--port {ports[4010]}"'
        cwd = ROOT
    else:
        cwd = tmp_path
        command = re.sub(r"\blayers-mock(?![^&]*--port)", f"layers-mock --port {ports[4010]}",
                         command)
        command = re.sub(r"\bproxy\b(?![^&]*--listen)", f"proxy --listen 127.0.0.1:{ports[4020]}",
                         command)
    servers = len(re.findall(r"\blayers-mock\b(?! --help)|\bproxy\b|^make mock", command))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAYERS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if servers and "".join(output).count("listening on") >= servers:
                break
            time.sleep(0.1)
        if proc.poll() is None:
            assert "".join(output).count("listening on") >= servers, "".join(output)[-3000:]
            # answering, not just announced (the URL each prints): a Ctrl-C while it still
            # starts is not what a reader does
            probes = [url + ("/__proxy/violations" if proxy else "/openapi.yaml") for proxy, url
                      in re.findall(r"(proxy )?listening on (http://[\d.:]+)", "".join(output))]
            for probe in probes:
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(probe, timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                else:
                    pytest.fail(f"{probe} never answered:\n{''.join(output)[-3000:]}")
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(30)
        reader.join(5)
        shown = f"{block.id}: {command}\n{''.join(output)[-3000:]}"
        if command.startswith("make "):  # make itself dies of the Ctrl-C, as in a terminal
            assert proc.returncode in (0, -signal.SIGINT, 130), shown
            assert "layers-mock stopped" in "".join(output), shown
        else:
            assert proc.returncode == 0, shown
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait(10)


@pytest.mark.e2e
@pytest.mark.parametrize("block", blocks({"python"}), ids=lambda b: b.id)
def test_python_blocks_run(block, mock, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(substitute(block.body, tmp_path, mock.url), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=environment(mock))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.e2e
@pytest.mark.parametrize("block", blocks({"pytest"}), ids=lambda b: b.id)
def test_pytest_blocks_pass_with_the_plugin(block, mock, tmp_path):
    (tmp_path / "test_block.py").write_text(block.body, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_block.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, env={k: v for k, v in environment(mock).items()
                                            if not k.startswith("LAYERS_")})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and "skipped" not in done.stdout


@pytest.mark.e2e
@pytest.mark.slow
class TestGithubSteps:
    @pytest.mark.parametrize("block", blocks({"github-steps"}), ids=lambda b: b.id)
    def test_github_steps_run(self, block, mock, tmp_path):
        _github_steps_run(block, mock, tmp_path)


def _github_steps_run(block, mock, tmp_path):
    """The run steps as a runner runs them: the step's env with the secrets filled in (the
    test keys), STAGING_URL and LAYERS_PROJECT set by the job; the install step is the kit
    already on PATH. The artifact step must name the folder the run wrote."""
    secrets = {"LAYERS_KEY": ids.FULL, "LAYERS_RO_KEY": ids.READONLY}

    def fill(value: str) -> str:
        return re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: secrets[m.group(1)], value)

    reset(mock)
    steps = yaml.safe_load(block.body)
    env = {k: v for k, v in environment(mock).items() if not k.startswith("LAYERS_")}
    env.update(STAGING_URL=mock.url, LAYERS_PROJECT=ids.PRJ_AUTO)
    for step in steps:
        if "run" not in step:
            continue
        if step["run"].startswith("pip install layers-regenerate-kit"):
            continue  # installed: this venv's kit is on PATH
        step_env = {**env, **{k: fill(str(v)) for k, v in (step.get("env") or {}).items()}}
        done = run_bash(step["run"], cwd=tmp_path, env=step_env, timeout=300)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert (tmp_path / upload["with"]["path"] / "conformance.xml").is_file()


# -- the publisher's blocks, in a throwaway checkout ------------------------------------------

CHECKOUT_FILES = ("openapi.yaml", "pyproject.toml", "setup.py", "Makefile", "MANIFEST.in",
                  "README.md", "LICENSE", "package.json", "package-lock.json", ".spectral.yaml",
                  "redocly.yaml")
CHECKOUT_DIRS = ("contract", "mock", "conformance", "serving", "lint")


def throwaway_checkout(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the checkout whose commands import the kit from the copy (`layers_kit` is a
    link to it on PYTHONPATH), so `make release`, `bump` and `publish` write into the copy."""
    top = tmp / "checkout"
    top.mkdir()
    for name in CHECKOUT_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, top / name)
    for name in CHECKOUT_DIRS:
        shutil.copytree(ROOT / name, top / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "reference.html",
                                                      "reference.sha256"))
    (top / "node_modules").symlink_to(ROOT / "node_modules")
    path = tmp / "pythonpath"
    path.mkdir()
    (path / "layers_kit").symlink_to(top)
    venv_bin = top / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name, module in (("layers-contract", "layers_kit.contract"),
                         ("layers-mock", "layers_kit.mock"),
                         ("layers-conformance", "layers_kit.conformance"), ("python", None)):
        run = f'-m {module} "$@"' if module else '"$@"'
        shim = venv_bin / name
        shim.write_text(f'#!/bin/sh\nPYTHONPATH={path} exec {sys.executable} {run}\n')
        shim.chmod(0o755)
    (top / ".venv" / ".installed-stamp").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAYERS_")}
    env.update(PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
               XDG_CACHE_HOME=str(tmp / "cache"))
    return top, env


def _checkout_pages() -> list[str]:
    return sorted({b.path for b in blocks({"sh"}) if "checkout" in b.args})


def _checkout_class(page: str) -> type:
    @pytest.mark.slow
    def test_checkout_blocks_run_in_order_in_a_throwaway_checkout(self, tmp_path):
        _checkout_blocks(page, tmp_path)

    return type(_class_name("TestCheckout", page), (), {
        "test_checkout_blocks_run_in_order_in_a_throwaway_checkout":
            test_checkout_blocks_run_in_order_in_a_throwaway_checkout})


def _checkout_blocks(page: str, tmp_path: Path) -> None:
    require_npm_tool("redocly")
    top, env = throwaway_checkout(tmp_path)
    probe = subprocess.run([str(top / ".venv" / "bin" / "python"), "-c",
                            "import layers_kit.contract as c; print(c.__file__)"],
                           capture_output=True, text=True, env=env, check=True)
    assert probe.stdout.startswith(str(tmp_path)), probe.stdout  # the copy, never the checkout
    before = {p: (ROOT / p).read_bytes() for p in ("openapi.yaml", "contract/CHANGELOG.md")}
    for block in [b for b in blocks({"sh"}) if b.path == page and "checkout" in b.args]:
        done = run_bash(substitute(block.body, tmp_path), cwd=top, env=env, timeout=300)
        assert done.returncode == 0, f"{block.id}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert {p: (ROOT / p).read_bytes() for p in before} == before  # the real checkout untouched
    if "make release" in "".join(b.body for b in blocks({"sh"}) if b.path == page):
        version = yaml.safe_load((top / "openapi.yaml").read_text())["info"]["version"]
        assert (top / "contract" / "releases" / version / "openapi.yaml").is_file()


for _page in _checkout_pages():
    globals()[_class_name("TestCheckout", _page)] = _checkout_class(_page)


# -- the site ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """`make docs`' build (mkdocs --strict), into a folder of this run."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--quiet", "--site-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return out


class TestSite:
    def test_the_site_has_the_generated_references(self, site):
        _generated_references(site)

    @pytest.mark.e2e
    def test_the_site_in_chromium_every_page_search_and_nothing_from_outside(self, served, site):
        _site_in_chromium(served, site)


def _generated_references(site):
    mock_page = (site / "reference" / "cli" / "layers-mock.html").read_text(encoding="utf-8")
    for flag in ("--admin-token", "--store", "--stage-seconds", "--clock"):
        assert flag in mock_page
    contract_page = (site / "reference" / "cli" / "layers-contract.html").read_text()
    assert "layers-contract bump" in contract_page and "major" in contract_page
    assert "--fail-on-client-violations" in (
        site / "reference" / "cli" / "layers-conformance-proxy.html").read_text()
    assert "--base-url" in (site / "reference" / "cli" / "layers-conformance-run.html").read_text()
    from layers_kit.contract.rules import RULES
    rules = (site / "reference" / "diff-rules.html").read_text()
    assert all(f"<code>{rule}</code>" in rules for rule in RULES)
    assert (site / "reference" / "rules.html").is_file()  # the rule catalogue is in the site
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html, page
        outside = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert outside == [], f"{page}: {outside}"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _site_in_chromium(served, site):
    chromium = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    blocked: list[str] = []
    errors: list[str] = []

    def route(r) -> None:
        if r.request.url.startswith((served, "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    nav = {p.relative_to(site).as_posix() for p in site.rglob("*.html")} - {"404.html"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            # every page, reached by following the site's own links from the home page
            seen, queue = set(), ["index.html"]
            while queue:
                path = queue.pop()
                if path in seen:
                    continue
                seen.add(path)
                answer = page.goto(f"{served}/{path}")
                assert answer is not None and answer.status == 200, path
                expect(page.locator("article h1").first).to_be_visible()
                for href in page.eval_on_selector_all(
                        "a[href]", "els => els.map(e => e.href)"):
                    if href.startswith(served):
                        target = href[len(served) + 1:].split("#")[0].split("?")[0]
                        if target.endswith(".html") and target not in seen:
                            queue.append(target)
            assert nav - seen == set(), f"pages no link reaches: {sorted(nav - seen)}"
            # the search: type a word, results appear
            page.goto(f"{served}/index.html")
            search = page.locator("input.md-search__input")
            search.click()
            search.press_sequentially("idempotency", delay=30)  # typed, as a reader does
            results = page.locator(".md-search-result__item")
            expect(results.first).to_be_visible()
            assert results.count() >= 1
            expect(page.locator(".md-search-result__meta")).to_contain_text("matching")
            page.locator(".md-search-result__item a").first.click()
            page.wait_for_load_state("load")
            assert page.url.startswith(served)
            shots = ROOT / "reports" / "browser"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "docs-search-result.png"))
        finally:
            browser.close()
    assert blocked == [], f"the site reached outside its origin: {blocked}"
    assert errors == [], errors
