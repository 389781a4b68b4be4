"""Identifier formats of D3: prefixed UUIDs and ULIDs."""

from __future__ import annotations

import os
import re
import time
import uuid

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters per 10 bits: a ULID is 13 lookups (it is made several times per request).
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = tuple(range(120, -1, -10))


def ulid() -> str:
    """A ULID: 48 bits of milliseconds and 80 random bits in Crockford base32 (26 chars)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join([_PAIRS[(value >> s) & 1023] for s in _SHIFTS])


def ulid_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def uuid_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4()}"


def job_id() -> str:
    return ulid_id("job")


def asset_id() -> str:
    return ulid_id("ast")


def request_id() -> str:
    return ulid_id("req")


def canonical_container_id(raw: str) -> str | None:
    """D3: `cnt_<uuid>` and the bare `<uuid>` name the same container; None if neither."""
    bare = raw[4:] if raw.startswith("cnt_") else raw
    bare = bare.lower()
    return f"cnt_{bare}" if _UUID.match(bare) else None


def canonical_prefixed(raw: str, prefix: str) -> str:
    """Lower-case the UUID part of `prj_`/`sp_` ids so lookups ignore case."""
    head, _, tail = raw.partition("_")
    return f"{prefix}_{tail.lower()}" if head == prefix else raw
