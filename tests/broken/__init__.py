"""Deliberately broken implementations, for proving the conformance kit. Tests only.

Each variant patches the real mock so that it breaks exactly one rule the way a real
implementation might; `python -m tests.broken --broken NAME [layers-mock args]` serves it.
"""
