"""Stateful mock of the Layers content-regeneration API, driven by openapi.yaml.

    from layers_kit.mock import serve   # the real mock on a free port, for tests and notebooks

Attributes load lazily: importing `mock` (or `mock.domain`) must not pull in the web stack.
"""

__all__ = ["MockServer", "create_app", "serve"]


def __getattr__(name: str):
    if name == "create_app":
        from layers_kit.mock.web.app import create_app

        return create_app
    if name in ("serve", "MockServer"):
        from layers_kit.mock import embed

        return getattr(embed, name)
    raise AttributeError(name)
