"""The contract, the lowest layer: the one reading of openapi.yaml (`spec`, `operations`) that
the mock, the kit and the proxy share, and its publishing (D12): release files, the reference
page, the changelog and the breaking-change diff (the command is `layers-contract`).

Names load lazily: the mock reads the spec through this package at start and must not pay for
the diff's or the publisher's imports.
"""

from importlib import import_module

_HOME = {
    "Change": "layers_kit.contract.diff", "DiffResult": "layers_kit.contract.diff",
    "diff": "layers_kit.contract.diff",
    "Document": "layers_kit.contract.document", "load": "layers_kit.contract.document",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(name)
