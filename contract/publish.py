"""`layers-contract publish`: the files partners receive for one version of the contract (D12).

    openapi.yaml   the contract, one file (it has no external references; checked)
    openapi.json   the same document as JSON (equal content, parsed)
    index.html     the self-contained reference page (contract.page)
    CHANGELOG.md   the contract's changelog
    SHA256SUMS     `sha256sum -c` format, one line per file above
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from layers_kit.contract import changelog, page
from layers_kit.contract.document import ContractError, external_refs, load

FILES = ("openapi.yaml", "openapi.json", "index.html", "CHANGELOG.md")


def publish(spec_file: Path, out: Path, *, html: bytes | None = None) -> list[Path]:
    """Write the release of `spec_file` into `out`; returns the files written."""
    doc = load(spec_file)
    refs = external_refs(doc.data)
    if refs:
        raise ContractError(f"the contract refers to other files ({refs[0]}, ...): "
                            "bundle it into one file first (redocly bundle)")
    if changelog.section(doc.version) is None:
        raise ContractError(f"CHANGELOG.md has no section for {doc.version}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec_file, out / "openapi.yaml")  # the source text, comments and all
    (out / "openapi.json").write_text(
        json.dumps(doc.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "index.html").write_bytes(html if html is not None else page.page_for(spec_file))
    shutil.copyfile(changelog.CHANGELOG, out / "CHANGELOG.md")
    sums = "".join(f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}\n"
                   for name in FILES)
    (out / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return [out / name for name in (*FILES, "SHA256SUMS")]
