"""A fresh venv holding a wheel and exactly its declared dependencies, offline and in seconds.

A real `pip install <wheel>` took 50-140 s here (index look-ups for ~65 distributions on a busy
2-core machine) and needs the network. Instead: the wheel is installed with `--no-deps`, and
the dependency closure of its `Requires-Dist` (what pip would install), taken from this test
venv's installed distributions, is made visible through one `.pth` file pointing at a folder
of symlinks to those distributions' files only. Not this checkout, not its editable install,
not the test-only tools: an undeclared dependency is missing there, as it is for a user.
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
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


def make_venv(wheel: Path, home: Path, *, timeout: float = 300) -> Path:
    """A venv at `home` with the wheel installed (non-editable) and its dependencies visible."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True,
                   timeout=timeout)
    python = home / "bin" / "python"
    deps = dependency_closure(wheel_requirements(wheel))
    _link_files(deps, home / "deps")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True, timeout=timeout).stdout.strip())
    (site / "zz-layers-test-deps.pth").write_text(f"{home / 'deps'}\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=timeout)
    return home
