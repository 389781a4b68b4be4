"""The business-rule checks, one module per rule family (R1-R12 regenerate, D5, D6, D7, D8,
D16)."""

from layers_kit.conformance.checks import (  # noqa: F401 - registers the checks
    approval,
    auth,
    bodies,
    envelope,
    idempotency,
    jobs,
    regenerate,
)
