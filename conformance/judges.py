"""One judge per rule, shared by the active kit and the validating proxy.

A judge is a plain function of what an exchange (or two reads of one resource) showed: status,
headers, body bytes, or the digest of a kept answer. It knows no HTTP client, no check and no
proxy; it returns the `Finding`s of the rule it judges, each with the rule's id and one
readable message. The kit's checks (conformance/checks/) and the proxy's checks
(conformance/proxy/checks.py) hand it what they saw, so the same exchange gets the same rule
and the same message from both, and a fix to a rule is made here once (as Prism's mocker and
forwarder share one validator).

The rules (see docs/reference/rules.md):
- D5, every response: an `X-Request-Id` header; every error: JSON, the envelope
  `{"error": {"code", "message", "requestId"}}`, `requestId` equal to `X-Request-Id`, and a
  code that travels with the status the contract documents for it.
- D6, a repeated Idempotency-Key: a replay of a kept first answer carries
  `Idempotent-Replayed: true` and the first status and body bytes; an unmarked answer to a
  repeated request is a second run; a key reused for another request is not carried out.
- D7, two reads of one job: a terminal status never changes, progress and stage never go
  back, and the ETag changes whenever the job does (and only then); every read of a job has an
  ETag and a progress in [0, 1].
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# D7: the documented order of a running job's stages, and the statuses that end a job.
STAGES = ("queued", "planning", "generating_visuals", "assembling", "finalizing")
TERMINAL = frozenset({"completed", "failed", "canceled"})
_SHOWN = 300  # characters of a body a finding quotes


@dataclass(frozen=True)
class Finding:
    """A rule broken by what was seen: the rule's id, one sentence, and the two sides."""

    rule: str
    message: str
    expected: str | None = None
    received: str | None = None


def _finding(rule: str, message: str, expected: Any = None, received: Any = None) -> Finding:
    def cut(value: Any) -> str | None:
        return None if value is None else str(value)[:500]
    return Finding(rule, message, cut(expected), cut(received))


Headers = Callable[[str], str | None]  # a case-insensitive header lookup


def header_lookup(headers: Mapping[str, str] | list[tuple[str, str]]) -> Headers:
    """A case-insensitive lookup over a mapping or a list of pairs (the first value wins)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    table: dict[str, str] = {}
    for k, v in pairs:
        table.setdefault(k.lower(), v)
    return lambda name: table.get(name.lower())


def _text(body: bytes | None) -> str:
    return (body or b"(empty)")[:_SHOWN].decode("utf-8", "replace")


# ---- D5: the error envelope -------------------------------------------------------------------

def request_id(status: int, header: Headers) -> list[Finding]:
    """D5: every response, error or not, has an X-Request-Id header."""
    if header("x-request-id"):
        return []
    return [_finding("D5", "the response has no X-Request-Id header",
                     expected="X-Request-Id: req_…", received=f"{status} without it")]


def error_envelope(status: int, header: Headers, body: bytes | None,
                   status_of_code: Mapping[str, frozenset[int]]) -> list[Finding]:
    """D5: an error (4xx, 5xx) is JSON in the envelope, its requestId is X-Request-Id, and its
    code travels with a status the contract documents for it."""
    if status < 400:
        return []
    out: list[Finding] = []
    ctype = (header("content-type") or "").split(";")[0].strip().lower()
    if not (ctype == "application/json" or ctype.endswith("+json")):
        out.append(_finding("D5", "the error response is not JSON",
                            expected="Content-Type: application/json",
                            received=f"{status} with Content-Type {ctype or '(none)'}"))
    try:
        parsed = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        parsed = None
    inner = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(inner, dict) or not all(
            isinstance(inner.get(k), str) and inner.get(k) for k in ("code", "message",
                                                                      "requestId")):
        out.append(_finding("D5", "the error body is not the D5 envelope",
                            expected='{"error": {"code", "message", "requestId"}}',
                            received=_text(body)))
        return out
    rid = header("x-request-id")
    if rid and inner["requestId"] != rid:
        out.append(_finding("D5", "error.requestId differs from the X-Request-Id header",
                            expected=rid, received=inner["requestId"]))
    statuses = status_of_code.get(inner["code"])
    if statuses and status not in statuses:
        out.append(_finding("D5", f"the code {inner['code']} travels with another status",
                            expected=" or ".join(map(str, sorted(statuses))), received=status))
    return out


def envelope(status: int, header: Headers, body: bytes | None,
             status_of_code: Mapping[str, frozenset[int]]) -> list[Finding]:
    """Every D5 judgement of one response."""
    return request_id(status, header) + error_envelope(status, header, body, status_of_code)


# ---- D6: idempotent replays -------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """What a server answered, as far as a replay must repeat it: the status and the digest of
    the body bytes (a digest, so that a proxy keeps 100,000 keys in little memory)."""

    status: int
    digest: str

    @classmethod
    def of(cls, status: int, body: bytes | None) -> Answer:
        return cls(status, hashlib.sha256(body or b"").hexdigest())


def replay(*, first: Answer | None, again: Answer, replayed: bool, same_request: bool,
           first_use: bool) -> list[Finding]:
    """D6: judge an answer to a request that carried an Idempotency-Key.

    `first` is the kept first answer to the key (None when none was kept: unknown, expired, or
    an outcome a server does not keep, such as a 422 VALIDATION_FAILED or a 429);
    `same_request` says whether this request has the first one's fingerprint; `first_use`
    that no earlier request with the key is known.
    """
    if replayed and first_use:
        return [_finding("D6", "Idempotent-Replayed on the first use of an Idempotency-Key",
                         expected="the request carried out, no Idempotent-Replayed",
                         received="Idempotent-Replayed: true")]
    if first is None:
        return []
    if same_request and replayed and again != first:
        return [_finding("D6", "the replay differs from the first answer to the key",
                         expected=f"status {first.status} and the same body bytes",
                         received=f"status {again.status} and "
                                  f"{'the same' if again.digest == first.digest else 'other'}"
                                  " body bytes")]
    # An unmarked answer is a second run when it is a success, or the first answer's status
    # again; a 409 (IDEMPOTENCY_IN_PROGRESS), a 429 or a 5xx may rightly interrupt a replay.
    ran_again = 200 <= again.status < 300 or (again.status == first.status and
                                              again.status not in (409, 429) and
                                              again.status < 500)
    if same_request and not replayed and ran_again:
        return [_finding("D6", "a repeated request with the same Idempotency-Key ran again",
                         expected=f"a replay of the first {first.status} with "
                                  "Idempotent-Replayed: true",
                         received=f"{again.status} without Idempotent-Replayed")]
    if not same_request and 200 <= again.status < 300:
        return [_finding("D6", "a key reused with another request was carried out",
                         expected="409 IDEMPOTENCY_CONFLICT", received=again.status)]
    return []


def replay_without_key(replayed: bool) -> list[Finding]:
    """D6: Idempotent-Replayed answers only a request that carried an Idempotency-Key."""
    if not replayed:
        return []
    return [_finding("D6", "Idempotent-Replayed on a request without an Idempotency-Key",
                     expected="no Idempotent-Replayed header", received="true")]


# ---- D7: jobs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobRead:
    """One read of a job: its status, stage and progress, the digest of its representation
    (the body bytes), and the ETag it came with."""

    job_id: str
    status: str
    stage: str
    progress: float
    digest: str
    etag: str | None

    @classmethod
    def of(cls, body: bytes | None, etag: str | None) -> JobRead | None:
        """The read a job body shows, or None when the body is not a job (the schema judge
        reports that)."""
        try:
            job = orjson.loads(body or b"")
        except orjson.JSONDecodeError:
            return None
        if not isinstance(job, dict):
            return None
        status, stage, progress = job.get("status"), job.get("stage"), job.get("progress")
        if status not in ("running", *TERMINAL) or not isinstance(stage, str) or \
                isinstance(progress, bool) or not isinstance(progress, int | float) or \
                not isinstance(job.get("jobId"), str):
            return None
        # The representation, not its spelling: the same JSON in another key order or spacing
        # is the same job (the kit compares parsed bodies, the proxy bytes: both get this).
        digest = hashlib.sha256(orjson.dumps(job, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return cls(job["jobId"], status, stage, float(progress), digest, etag)


def job_read(read: JobRead) -> list[Finding]:
    """D7, one read: an ETag, a documented stage, a progress in [0, 1]."""
    out = []
    if not read.etag:
        out.append(_finding("D7", "getJob answered 200 without an ETag",
                            expected="ETag: <version>", received="no ETag header"))
    if read.stage not in STAGES:
        out.append(_finding("D7", "the job's stage is not a documented one",
                            expected=" -> ".join(STAGES), received=read.stage))
    if not 0 <= read.progress <= 1:
        out.append(_finding("D7", "the job's progress is outside [0, 1]",
                            expected="0 <= progress <= 1", received=read.progress))
    return out


def job_progress(before: JobRead, after: JobRead) -> list[Finding]:
    """D7, two reads of one job, `after` begun once `before` had ended: a terminal status never
    changes; progress and stage never go back."""
    out = []
    if before.status in TERMINAL and after.status != before.status:
        out.append(_finding("D7", "a terminal job changed its status",
                            expected=before.status, received=after.status))
    if after.progress < before.progress:
        out.append(_finding("D7", "progress went back between two reads of the job",
                            expected=f">= {before.progress:g}", received=f"{after.progress:g}"))
    if after.status == "running" == before.status and before.stage in STAGES and \
            after.stage in STAGES and STAGES.index(after.stage) < STAGES.index(before.stage):
        out.append(_finding("D7", "the stage went back between two reads of the job",
                            expected=f"{before.stage} or later", received=after.stage))
    return out


def job_etag(before: JobRead, after: JobRead) -> list[Finding]:
    """D7, two reads of one job: the ETag changes whenever the job's representation changes,
    and only then."""
    if not before.etag or not after.etag:
        return []  # job_read reports a missing ETag
    if before.digest != after.digest and before.etag == after.etag:
        return [_finding("D7", "the job changed but its ETag did not",
                         expected=f"an ETag other than {before.etag}",
                         received=f"{after.etag} again with {after.status} at {after.stage}")]
    if before.digest == after.digest and before.etag != after.etag:
        return [_finding("D7", "the ETag changed while the job did not",
                         expected=before.etag, received=after.etag)]
    return []
