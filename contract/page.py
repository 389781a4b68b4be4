"""The contract's reference page: one self-contained HTML file, built by Redocly, never fetched.

`redocly build-docs --inlineBundle` (the pinned @redocly/cli) embeds Redoc's scripts and the
bundled contract in the page. Its only outside request is the "API docs by Redocly" logo from
Redocly's CDN; we inline that image (`_offline`), so a page opened offline makes no request
at all, which the browser test checks with every outside request blocked.

Where the page comes from, in order (`page_for`):
1. a page packaged with the distribution (`contract/reference.html`, built by setup.py when the
   node tools are present at build time) whose recorded contract hash matches the contract;
2. a page built before by this function for the same contract, in the cache directory;
3. a page built now with Redocly (about 2-4 s), then cached.
Without a packaged page and without node, `PageUnavailable` says what to do.

The code-sample tabs are configured from the contract's own `x-codeSamples` (`_languages`),
in a config file of the build alone: the project's `redocly.yaml` is the lint gate's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_PACKAGED = Path(__file__).parent / "reference.html"
_PACKAGED_HASH = Path(__file__).parent / "reference.sha256"
_REPO_BIN = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "redocly"
_LOGO = "https://cdn.redoc.ly/redoc/logo-mini"
# A neutral inline mark in place of Redocly's remote logo (the attribution text stays).
_INLINE_LOGO = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' "
                "width='16' height='16'%3E%3Crect width='16' height='16' rx='3' "
                "fill='%23d0d0d0'/%3E%3C/svg%3E")


class PageUnavailable(RuntimeError):
    """No packaged page fits the contract and Redocly is not installed to build one."""


def redocly() -> str | None:
    """The Redocly CLI: $LAYERS_REDOCLY, the checkout's node_modules, or `redocly` on PATH."""
    explicit = os.environ.get("LAYERS_REDOCLY")
    if explicit:
        return explicit
    if _REPO_BIN.exists() and shutil.which("node"):
        return str(_REPO_BIN)
    return shutil.which("redocly")


def spec_hash(spec: bytes) -> str:
    return hashlib.sha256(spec).hexdigest()


def _offline(html: str) -> str:
    """Replace the page's only outside resource (Redocly's logo) with an inline image."""
    for suffix in ("-full.svg", ".svg"):
        html = html.replace(_LOGO + suffix, _INLINE_LOGO)
    if "cdn.redoc.ly" in html:
        raise RuntimeError("the Redocly page still refers to cdn.redoc.ly; update contract/page.py")
    return html


def _languages(spec_file: Path) -> list[dict[str, str]]:
    """The tabs of the code-sample panel: every `x-codeSamples` language of the contract, then
    the request payload. Redoc shows a sample only when its `lang` is listed here, and its
    default list has none of ours (Shell, TypeScript) in our labels."""
    try:
        import yaml  # a runtime dependency; absent only in an isolated build environment

        spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    except ImportError:
        spec = json.loads(spec_file.read_text()) if spec_file.suffix == ".json" else {}
    seen: dict[str, dict[str, str]] = {}
    for item in (spec.get("paths") or {}).values():
        for op in item.values():
            for sample in (op.get("x-codeSamples") or []) if isinstance(op, dict) else []:
                lang = sample.get("lang")
                if lang and lang not in seen:
                    seen[lang] = {"lang": lang, "label": sample.get("label") or lang}
    return [*(seen.values() or [{"lang": "curl"}]), {"lang": "Payload"}]


def build(spec_file: Path, out: Path, *, tool: str | None = None, timeout: float = 120) -> Path:
    """Build the page of `spec_file` into `out` with Redocly (raises PageUnavailable)."""
    tool = tool or redocly()
    if not tool:
        raise PageUnavailable(
            "the reference page needs the Redocly CLI to be built: run `npm ci` in the "
            "project's checkout (or set LAYERS_REDOCLY), or install a wheel built with it")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="layers-page-") as tmp:
        raw = Path(tmp) / "index.html"
        config = Path(tmp) / "redocly-docs.yaml"
        config.write_text(json.dumps({"openapi": {"codeSamples": {
            "languages": _languages(spec_file)}}}))  # JSON is YAML
        done = subprocess.run(
            [tool, "build-docs", str(spec_file), "--inlineBundle", "--config", str(config),
             "-o", str(raw)],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "REDOCLY_TELEMETRY": "off",
                 "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"})
        if done.returncode != 0 or not raw.exists():
            raise PageUnavailable(f"redocly build-docs failed ({done.returncode}): "
                                  f"{(done.stderr or done.stdout).strip()[-800:]}")
        out.write_text(_offline(raw.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "layers-contract"


def page_for(spec_file: Path) -> bytes:
    """The page of this contract: packaged, cached or built now (see the module docstring)."""
    digest = spec_hash(spec_file.read_bytes())
    if _PACKAGED.exists() and _PACKAGED_HASH.exists() \
            and _PACKAGED_HASH.read_text().strip() == digest:
        return _PACKAGED.read_bytes()
    cached = cache_dir() / f"reference-{digest}.html"
    if not cached.exists():
        # A name of its own per build (the process id was shared by a process's threads:
        # concurrent builds wrote one file), renamed into place: atomic, so concurrent
        # builders never serve half a page.
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=cached.parent, prefix=f"{cached.name}.", suffix=".tmp")
        os.close(fd)
        partial = Path(name)
        try:
            build(spec_file, partial)
            partial.replace(cached)
        finally:
            partial.unlink(missing_ok=True)
    return cached.read_bytes()
