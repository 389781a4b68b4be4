"""Installs the repository's three folders under one import name of their own, copies the root
openapi.yaml into the contract package at build time, and builds the contract's reference page
into it when the node tools are present.

The folders keep the names the project is known by (`mock/`, `conformance/`, `contract/`, and
`serving/`, the HTTP serving the mock and the proxy share); installed, they are
`layers_kit.mock`, `layers_kit.conformance`, `layers_kit.contract` and `layers_kit.serving`, so
that PyPI's `mock` or a partner's own `mock/` or `conformance/` folder never shadows them (and
they never shadow those). `layers_kit` itself is a namespace package (no `__init__.py`).

The root file is the single source; the package ships a copy so that a non-editable install
finds the spec at run time. The reference page (contract/page.py) needs Redocly, which an
installed wheel has no node to run: a wheel built in a checkout with `npm ci` done carries the
page (with the hash of the contract it shows), so `/reference` works wherever it is installed.
Without the tools the wheel is built without the page and says so.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
NAMESPACE = "layers_kit"
FOLDERS = ("mock", "conformance", "contract", "serving")


def _packages() -> list[str]:
    """Every package under the folders, by its installed name: a new subpackage cannot be left
    out (tests/test_install.py compares the wheel with the source tree)."""
    found = []
    for folder in FOLDERS:
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT).parts
            found.append(".".join((NAMESPACE, *parts)))
    return found


class BuildWithSpec(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / NAMESPACE / "contract" / "openapi.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "openapi.yaml", target)
        self._reference_page(Path(self.build_lib) / NAMESPACE / "contract")

    @staticmethod
    def _reference_page(package: Path) -> None:
        # page.py uses the standard library only: load it alone (no PyYAML in a build env)
        spec_obj = importlib.util.spec_from_file_location("_page", ROOT / "contract" / "page.py")
        page = importlib.util.module_from_spec(spec_obj)
        spec_obj.loader.exec_module(page)
        spec = ROOT / "openapi.yaml"
        try:
            page.build(spec, package / "reference.html")
        except (page.PageUnavailable, OSError) as err:
            print(f"note: the wheel carries no reference page ({err})", file=sys.stderr)
            return
        (package / "reference.sha256").write_text(page.spec_hash(spec.read_bytes()) + "\n")


setup(
    cmdclass={"build_py": BuildWithSpec},
    packages=_packages(),
    package_dir={f"{NAMESPACE}.{folder}": folder for folder in FOLDERS},
)
