"""Copies the root openapi.yaml into the mock package at build time.

The root file is the single source; the package ships a copy so that a non-editable install
finds the spec at run time.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithSpec(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "mock" / "openapi.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "openapi.yaml", target)


setup(cmdclass={"build_py": BuildWithSpec})
