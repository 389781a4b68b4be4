"""Stateful mock of the Layers content-regeneration API, driven by openapi.yaml."""

__all__ = ["create_app"]


def __getattr__(name: str):  # lazy: importing mock.domain must not pull in the web stack
    if name == "create_app":
        from mock.web.app import create_app

        return create_app
    raise AttributeError(name)
