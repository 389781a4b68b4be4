"""The rate-limit step of the API pipeline (D13): after authentication, before the body.

Every authenticated request of a key on a tier takes a token from its bucket for the
operation's class (`x-rate-limit-class`); an empty bucket is the D5 429 `RATE_LIMITED` with
`Retry-After`. It runs before any idempotency claim, so a 429 is never stored (D6).
"""

from __future__ import annotations

from layers_kit.mock.web.state import RequestState


async def rate_limit(st: RequestState) -> None:
    if st.principal is not None:
        await st.service.rate_limit(st.principal, st.rate_class)
