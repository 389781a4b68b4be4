"""The rules one exchange (or a short run of them) can show, judged on real traffic.

Each check is a plain function registered with its side (server or client), its rule id and a
name; it reads a `View` of one exchange and yields `Finding`s. The server side's rules are
judged by the judges the active kit uses too (conformance/judges.py), so an exchange gets the
same rule and message from both. What checks need to remember across exchanges (idempotency
keys, the jobs' last reads) lives in `Memory` (memory.py), bounded, and is learnt after every
check has judged the exchange. Nothing here knows the mock: every check follows from
openapi.yaml and the rules D5-D8 and R1.

Client violations are the caller's (a body that breaks the spec, no key, an unknown route, a
key reused for another request); server violations are the implementation's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from layers_kit.conformance import judges
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.proxy.exchange import Exchange
from layers_kit.conformance.proxy.ledger import CLIENT, SERVER, Finding
from layers_kit.conformance.proxy.memory import Memory
from layers_kit.contract import behaviour
from layers_kit.contract.behaviour import Call
from layers_kit.contract.operations import IDEMPOTENT_METHODS, Operations


@dataclass
class View:
    """One exchange with what the checks ask of it, computed once."""

    ex: Exchange
    operations: Operations
    contract: Contract
    memory: Memory
    known_path: bool = False
    operation: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # the route's, found once by the judge

    @cached_property
    def response(self):
        return self.ex.http_response()

    @cached_property
    def json(self) -> Any:
        try:
            return self.response.json()
        except ValueError:
            return None

    @cached_property
    def request_json(self) -> Any:
        try:
            return json.loads(self.ex.request_body or b"")
        except ValueError:
            return None

    @cached_property
    def credential(self) -> str | None:
        """Who called, as a digest (D8: X-Api-Key wins over Authorization)."""
        raw = self.ex.header("x-api-key", response=False) or \
            self.ex.header("authorization", response=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:32] if raw else None

    @cached_property
    def request_errors(self) -> list[str]:
        return self.contract.request_errors(self.ex.http_request())

    @cached_property
    def key_scope(self) -> str | None:
        """D6: an Idempotency-Key is scoped to the API key that sent it."""
        key = self.ex.header("idempotency-key", response=False)
        if not key or self.ex.method not in IDEMPOTENT_METHODS:
            return None
        return f"{self.credential}|{key}"

    @cached_property
    def fingerprint(self) -> str:
        """The request's D6 fingerprint: method, path and the canonical JSON of the body."""
        body = self.request_json
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() \
            if body is not None else (self.ex.request_body or b"")
        return hashlib.sha256(self.ex.method.encode() + b" " + self.ex.path.encode() + b"\n"
                              + canonical).hexdigest()

    @cached_property
    def idempotency(self) -> tuple[str, str] | None:
        """(the key's scope, the request's D6 fingerprint) when an Idempotency-Key came."""
        if self.key_scope is None:
            return None
        return self.key_scope, self.fingerprint

    @cached_property
    def answer(self) -> judges.Answer:
        """What the server answered, as D6 compares replays."""
        return judges.Answer.of(self.ex.status or 0, self.response.content)

    @cached_property
    def job(self) -> judges.JobRead | None:
        """The job this answer shows (getJob's 200, a job start's 202), as D7 compares reads."""
        return judges.JobRead.of(self.response.content, self.ex.header("etag"))

    def header(self, name: str) -> str | None:
        return self.ex.header(name)

    @cached_property
    def call(self) -> Call | None:
        """This exchange as the client rules read it (contract/behaviour.py); None outside
        the contract's operations."""
        if self.operation is None:
            return None
        op = self.operations[self.operation]
        body = self.json if isinstance(self.json, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else None
        params = self.params
        job_id = params.get("jobId") if self.operation == "getJob" else None
        if error and isinstance(error.get("details"), dict):
            job_id = error["details"].get("jobId") or job_id
        elif self.ex.status == 202 and isinstance(body.get("jobId"), str):
            job_id = body["jobId"]
        retry = self.ex.header("retry-after")
        key = self.ex.header("idempotency-key", response=False)
        return Call(
            at=self.ex.started, client=self.ex.header("x-client-id", response=False)
            or self.credential or "anonymous", method=self.ex.method, path=self.ex.path,
            operation=self.operation, status=self.ex.status or 0, idempotency_key=key,
            fingerprint=self.fingerprint if self.ex.request_body is not None or key else None,
            if_none_match=self.ex.header("if-none-match", response=False) is not None,
            etag=self.ex.header("etag"),
            retry_after=float(retry) if retry and retry.isdigit() else None,
            rate_class=op.rate_class, error_code=error.get("code") if error else None,
            job_id=job_id, job_status=body.get("status") if self.operation == "getJob"
            and self.ex.status == 200 else None, container_id=params.get("containerId"),
            request_id=self.ex.header("x-request-id"))

    @cached_property
    def client_breaches(self) -> dict[str, list[behaviour.Breach]]:
        """The client rules this exchange breaks, judged over the client's recent calls."""
        call = self.call
        if call is None:
            return {}
        calls = [*self.memory.calls_of(call.client), call]
        out: dict[str, list[behaviour.Breach]] = {}
        for rule, judge in behaviour.JUDGES.items():
            _, breaches = judge(calls)
            out[rule] = [b for b in breaches if b.calls[-1] is call]
        return out

    @property
    def replayed(self) -> bool:
        return (self.ex.header("idempotent-replayed") or "").lower() == "true"

    @property
    def error_code(self) -> str | None:
        body = self.json
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
            return code if isinstance(code, str) else None
        return None


@dataclass(frozen=True)
class Check:
    side: str
    rule: str
    name: str
    title: str
    fn: Callable[[View], Iterator[Finding]]
    # judged only for requests of a known operation that carry a key and match the spec
    needs_valid_request: bool = False


CHECKS: list[Check] = []


def check(side: str, rule: str, name: str, title: str, *, needs_valid_request: bool = False):
    def register(fn: Callable[[View], Iterator[Finding]]):
        CHECKS.append(Check(side, rule, name, title, fn, needs_valid_request))
        return fn
    return register


def _finding(check_name: str, message: str, expected: Any = None,
             received: Any = None) -> Finding:
    cut = lambda v: None if v is None else str(v)[:500]  # noqa: E731
    return Finding(check_name, message, cut(expected), cut(received))


def _judged(check_name: str, found: list[judges.Finding]) -> Iterator[Finding]:
    """A shared judge's findings, as this check's."""
    for f in found:
        yield Finding(check_name, f.message, f.expected, f.received)


# ---- client side --------------------------------------------------------------------------

@check(CLIENT, "D2", "client.known-operation", "The request names an operation of the contract")
def known_operation(v: View) -> Iterator[Finding]:
    """Watches every request under the API's prefix (`/v1/`), its method and path against the
    routes of openapi.yaml.

    Fails when the path is no route of the contract, or the route has no such method.
    """
    if not v.known_path:
        yield _finding("client.known-operation", "the path is not a route of the contract",
                       expected="a path of openapi.yaml", received=f"{v.ex.method} {v.ex.path}")
    elif v.operation is None:
        yield _finding("client.known-operation", "the contract has no such method on this path",
                       expected="a documented method", received=f"{v.ex.method} {v.ex.path}")


@check(CLIENT, "D8", "client.credentials", "The request carries an API key")
def credentials(v: View) -> Iterator[Finding]:
    """Watches every request of a known operation for an API key.

    Fails when the request has neither an X-Api-Key nor an Authorization header.
    """
    if v.operation and v.credential is None:
        yield _finding("client.credentials", "the request has no X-Api-Key and no Authorization",
                       expected="X-Api-Key: <key> or Authorization: Bearer <key>",
                       received="neither header")


@check(CLIENT, "SCHEMA", "client.request-schema", "The request matches openapi.yaml")
def request_schema(v: View) -> Iterator[Finding]:
    """Watches every request of a known operation that carries an API key, validated against
    openapi.yaml with openapi-core (path, query, headers and body).

    Fails when the request breaks the contract (the caller's violation).
    """
    if v.operation and v.credential and v.request_errors:
        yield _finding("client.request-schema", "the request breaks openapi.yaml",
                       expected="a request the contract documents",
                       received="; ".join(v.request_errors))


@check(CLIENT, "D6", "client.idempotency-key-reuse",
       "An Idempotency-Key is not reused for another request within 24 h",
       needs_valid_request=True)
def key_reuse(v: View) -> Iterator[Finding]:
    """Watches POST and PATCH requests with an Idempotency-Key, remembering for 24 hours, per API
    key and Idempotency-Key, the fingerprint (method, path, canonical JSON body) of the first
    request whose answer the server keeps (a 2xx or a stored error such as NOT_FOUND or CONFLICT).

    Fails when a later request reuses the key with another method, path or body.
    """
    first = v.memory.first_of(v)
    if first is not None and first.fingerprint != v.idempotency[1]:
        yield _finding("client.idempotency-key-reuse",
                       "the Idempotency-Key was used earlier with another method, path or body",
                       expected="a fresh key for a new request", received=v.ex.header(
                           "idempotency-key", response=False))


def _client_rule(rule: str) -> None:
    name = f"client.behaviour-{rule.lower()}"

    def judge(v: View) -> Iterator[Finding]:
        for b in v.client_breaches.get(rule, ()):
            yield _finding(name, b.message, expected=behaviour.RULES[rule],
                           received=" then ".join(
                               f"{c.method} {c.path} -> {c.status or 'no answer'}"
                               for c in b.calls))

    judge.__name__ = f"client_behaviour_{rule.lower()}"
    judge.__doc__ = (f"Watches each client's calls over time (its X-Client-Id, else its key) "
                     f"with the judge of client rule {rule} (contract/behaviour.py), the same "
                     f"one the mock's client report uses.\n\nFails when {rule} breaks: "
                     f"{behaviour.RULES[rule].lower()} does not hold for this call and the "
                     "ones before it.")
    check(CLIENT, rule, name, behaviour.RULES[rule])(judge)


for _rule in behaviour.RULES:
    _client_rule(_rule)


# ---- server side --------------------------------------------------------------------------

@check(SERVER, "D5", "server.answers", "The server answers every request")
def answers(v: View) -> Iterator[Finding]:
    """Watches every exchange under the API's prefix for a complete answer from the target.

    Fails when the target gave no complete HTTP response (the connection failed, was cut or timed
    out).
    """
    if v.ex.error:
        yield _finding("server.answers", "the target gave no complete answer",
                       expected="an HTTP response", received=v.ex.error)


@check(SERVER, "SCHEMA", "server.response-schema", "The response matches openapi.yaml")
def response_schema(v: View) -> Iterator[Finding]:
    """Watches every answer to a known operation, validated against openapi.yaml with openapi-core
    (status, headers and body; a 304 is not checked).

    Fails when the response is not one the contract documents for that operation.
    """
    if v.operation and v.ex.status is not None:
        errors = v.contract.response_errors(v.response)
        if errors:
            yield _finding("server.response-schema", "the response breaks openapi.yaml",
                           expected="a response the contract documents for "
                                    f"{v.operation}", received=f"{v.ex.status}: "
                                                               + "; ".join(errors))


@check(SERVER, "D5", "server.request-id", "Every response has X-Request-Id")
def request_id(v: View) -> Iterator[Finding]:
    """Watches every answer, success or error, for its X-Request-Id header.

    Fails when a response has no X-Request-Id.
    """
    if v.ex.status is not None:
        yield from _judged("server.request-id", judges.request_id(v.ex.status, v.header))


@check(SERVER, "D5", "server.error-envelope",
       "Errors are JSON in the D5 envelope, their code matches the status and their requestId "
       "equals X-Request-Id")
def error_envelope(v: View) -> Iterator[Finding]:
    """Watches every error answer (4xx, 5xx): its Content-Type, its body and its X-Request-Id.

    Fails when the error is not JSON, is not `{"error": {"code", "message", "requestId"}}` with
    non-empty strings, has a requestId other than its X-Request-Id, or carries a code with a status
    the contract does not document for that code.
    """
    if v.ex.status is not None:
        yield from _judged("server.error-envelope", judges.error_envelope(
            v.ex.status, v.header, v.response.content, v.operations.status_of_code))


@check(SERVER, "D5", "server.rejects-invalid-request",
       "A request that breaks the spec is refused (VALIDATION_FAILED), never carried out")
def rejects_invalid(v: View) -> Iterator[Finding]:
    """Watches requests of a known operation that carry an API key but break openapi.yaml, and the
    status they are answered with.

    Fails when such a request is answered below 400 (carried out instead of refused with 422
    VALIDATION_FAILED).
    """
    if v.operation and v.credential and v.request_errors and v.ex.status is not None \
            and v.ex.status < 400:
        yield _finding("server.rejects-invalid-request",
                       "a request that breaks openapi.yaml was answered with success",
                       expected="422 VALIDATION_FAILED",
                       received=f"{v.ex.status}, while: " + "; ".join(v.request_errors))


@check(SERVER, "R1", "server.location", "A 202 job envelope's Location equals its locationUrl",
       needs_valid_request=True)
def location(v: View) -> Iterator[Finding]:
    """Watches 202 answers whose JSON body has a locationUrl (the job envelopes) and their Location
    header.

    Fails when the Location header is missing or differs from locationUrl.
    """
    body = v.json
    if v.ex.status == 202 and isinstance(body, dict) and "locationUrl" in body:
        got = v.ex.header("location")
        if got != body["locationUrl"]:
            yield _finding("server.location", "the Location header differs from locationUrl",
                           expected=body["locationUrl"], received=got)


def _job_read(v: View) -> judges.JobRead | None:
    """getJob's 200: the read of a job (None for any other exchange)."""
    return v.job if v.operation == "getJob" and v.ex.status == 200 else None


@check(SERVER, "D7", "server.job-etag", "getJob sends an ETag, which changes with the job",
       needs_valid_request=True)
def job_etag(v: View) -> Iterator[Finding]:
    """Watches getJob's 200 answers, comparing each with the latest earlier read of the same job
    (one whose answer ended before this request began; the proxy keeps the last eight per job).

    Fails when a 200 has no ETag, when the job (its parsed JSON) changed but the ETag did not, or
    when the ETag changed while the job did not.
    """
    read = _job_read(v)
    if read is None:
        if v.operation == "getJob" and v.ex.status == 200 and not v.ex.header("etag"):
            yield _finding("server.job-etag", "getJob answered 200 without an ETag",
                           expected="ETag: <version>", received="no ETag header")
        return
    found = [f for f in judges.job_read(read) if "ETag" in f.message]
    before = v.memory.job_before(v)
    if before is not None and before.etag is not None:  # a job start's 202 has no ETag
        found += judges.job_etag(before, read)
    yield from _judged("server.job-etag", found)


@check(SERVER, "D7", "server.job-progress",
       "A job's stage and progress never go back; a terminal status never changes",
       needs_valid_request=True)
def job_progress(v: View) -> Iterator[Finding]:
    """Watches getJob's 200 answers, comparing each with the latest earlier read of the same job,
    or the 202 that started it (one whose answer ended before this request began).

    Fails when the stage is not a documented one, progress is outside [0, 1], progress or the
    running stage went back, or a terminal status (completed, failed, canceled) changed.
    """
    read = _job_read(v)
    if read is None:
        return
    found = [f for f in judges.job_read(read) if "ETag" not in f.message]
    before = v.memory.job_before(v)
    if before is not None:
        found += judges.job_progress(before, read)
    yield from _judged("server.job-progress", found)


@check(SERVER, "D6", "server.idempotent-replay",
       "Idempotent-Replayed only on a repeated key, repeating the first answer; a repeated "
       "request is replayed, not run again", needs_valid_request=True)
def idempotent_replay(v: View) -> Iterator[Finding]:
    """Watches answers and their Idempotent-Replayed header, remembering for 24 hours, per API key
    and Idempotency-Key of a POST or PATCH, when the key was first used and the first answer the
    server keeps (a 2xx or a stored error such as NOT_FOUND or CONFLICT).

    Fails when Idempotent-Replayed: true answers a request without a key or a key's first use; when
    a marked replay of the same request differs from the first answer in status or body bytes; when
    an unmarked repeat succeeds or repeats the first status (it ran again; 409, 429 and 5xx are
    tolerated); or when a key reused with another request is carried out (2xx).
    """
    if v.ex.status is None:
        return
    if v.idempotency is None:
        yield from _judged("server.idempotent-replay", judges.replay_without_key(v.replayed))
        return
    first = v.memory.first_of(v)
    yield from _judged("server.idempotent-replay", judges.replay(
        first=first.answer if first is not None else None, again=v.answer,
        replayed=v.replayed, same_request=first is not None and
        first.fingerprint == v.idempotency[1], first_use=not v.memory.seen_before(v)))
