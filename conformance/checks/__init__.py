"""The business-rule checks, one module per part of DESIGN (D4 regenerate, D5, D6, D7, D8)."""

from layers_kit.conformance.checks import auth, envelope, idempotency, jobs, regenerate  # noqa: F401
