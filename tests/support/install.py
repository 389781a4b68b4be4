"""A fresh venv holding a wheel and exactly its declared dependencies, offline and in seconds.

A real `pip install <wheel>` took 50-140 s here (index look-ups for ~65 distributions on a busy
2-core machine) and needs the network. Instead: the wheel is installed with `--no-deps`, and
the dependency closure of its `Requires-Dist` (what pip would install), taken from this test
venv's installed distributions, is made visible through one `.pth` file pointing at a folder
of symlinks to those distributions' files only. Not this checkout, not its editable install,
not the test-only tools: an undeclared dependency is missing there, as it is for a user.

Other distributions a test wants installed for real, before or after the wheel (PyPI's `mock`),
come as wheel files rebuilt from this test venv's installed copy (`wheel_of_installed`).
"""

from __future__ import annotations

import base64
import csv
import email
import hashlib
import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def wheel_requirements(wheel: Path) -> list[str]:
    """The wheel's own `Requires-Dist` lines (what a user's pip reads)."""
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(z.read(name)).get_all("Requires-Dist") or []


def dependency_closure(requirements: list[str]) -> dict[str, Distribution]:
    """The installed distributions that satisfy `requirements`, transitively, extras followed.

    Raises AssertionError when one is missing or its installed version is outside the bounds.
    """
    found: dict[str, Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        extras = frozenset(req.extras)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        key = (canonicalize_name(req.name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            raise AssertionError(f"{req} is required but not installed in the test venv") from None
        assert req.specifier.contains(dist.version, prereleases=True), (
            f"{req}: the test venv has {dist.version}")
        found[key[0]] = dist
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in (extras or {""})):
                sub.marker = None  # evaluated here, with the extras that asked for it
                todo.append(sub)
    return found


def _link_files(dists: dict[str, Distribution], folder: Path) -> None:
    folder.mkdir()
    for name, dist in dists.items():
        assert dist.files is not None, f"{name} has no RECORD: cannot tell its files"
        for top in {f.parts[0] for f in dist.files}:
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            source = Path(dist.locate_file(top))
            link = folder / top
            if source.exists() and not link.exists():  # a shared namespace folder: linked once
                link.symlink_to(source)


# What pip writes into a .dist-info when it installs (not part of the wheel it installed from).
_INSTALL_RECORDS = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def wheel_of_installed(name: str, out: Path) -> Path:
    """A wheel file of the pure-Python distribution `name`, rebuilt from this test venv's
    installed copy: the same files, byte for byte, as the wheel pip installed it from.

    Why this way: a test that installs PyPI's `mock` into a fresh venv must do a real `pip
    install` of a real wheel (the order against the kit's wheel is the point) and must not need
    the network. `pip download` at setup time would leave a file outside the venv that a plain
    `pip install -e .[test]` never makes; pip's cache is not ours to rely on; `pip wheel
    --no-index` needs a source tree nobody keeps. The installed copy is there whenever the
    `test` extra is, at exactly the version it resolved. A wheel is its files plus its
    .dist-info (METADATA, WHEEL, ...); pip installs the files verbatim (bytecode and the
    install records aside), and each file is checked against the installed RECORD's hash, so
    an altered installed copy fails here instead of passing as the real thing.
    """
    dist = distribution(name)
    assert dist.files is not None, f"{name} has no RECORD: cannot tell its files"
    info = email.message_from_string(dist.read_text("WHEEL") or "")
    assert info["Root-Is-Purelib"] == "true", f"{name} is not a pure-Python wheel"
    tags = [t.split("-") for t in info.get_all("Tag") or []]
    assert tags, f"{name}'s WHEEL names no tag"
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))
    stem = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    wheel = out / f"{stem}-{dist.version}-{tag}.whl"
    files, meta = [], []
    for f in dist.files:
        assert f.parts[0] != "..", f"{name} installs {f} outside site-packages (scripts?)"
        if f.suffix == ".pyc" or "__pycache__" in f.parts:
            continue
        if f.parts[0].endswith(".dist-info"):
            if f.name not in _INSTALL_RECORDS:
                meta.append(f)
            continue
        files.append(f)
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")  # RECORD is CSV: a comma in a path is quoted
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(files) + sorted(meta):  # the .dist-info last, as the wheel spec asks
            data = f.read_binary()
            digest = hashlib.sha256(data).digest()
            assert f.hash is not None and f.hash.mode == "sha256" and base64.urlsafe_b64decode(
                f.hash.value + "==") == digest, f"{name}: {f} differs from its RECORD"
            z.writestr(f.as_posix(), data)
            b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            rows.writerow([f.as_posix(), f"sha256={b64}", len(data)])
        (info_dir,) = {f.parts[0] for f in meta}
        rows.writerow([f"{info_dir}/RECORD", "", ""])
        z.writestr(f"{info_dir}/RECORD", record.getvalue())
    return wheel


def _pip_install(python: Path, wheel: Path, timeout: float) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                           "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"pip install {wheel.name}:\n{proc.stdout}{proc.stderr}"


def make_venv(wheel: Path, home: Path, *, before: Sequence[Path] = (),
              after: Sequence[Path] = (), timeout: float = 300) -> Path:
    """A venv at `home` with the wheel installed (non-editable) and its dependencies visible.

    `before` and `after` are other wheels, each installed by a `pip install` of its own before
    or after the kit's wheel, so that pip meets them in that order (as a user's venv would).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True,
                   timeout=timeout)
    python = home / "bin" / "python"
    deps = dependency_closure(wheel_requirements(wheel))
    _link_files(deps, home / "deps")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True, timeout=timeout).stdout.strip())
    (site / "zz-layers-test-deps.pth").write_text(f"{home / 'deps'}\n", encoding="utf-8")
    for each in (*before, wheel, *after):
        _pip_install(python, each, timeout)
    return home
