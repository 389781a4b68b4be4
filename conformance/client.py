"""The kit's HTTP client: records every exchange, masks keys, checks every response (D10).

Every response a business-rule check receives is validated against the contract with
openapi-core and judged by D5's judge (conformance/judges.py, shared with the proxy); the
breaches are judged under their own rules (SCHEMA, D5) at the end of the run.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from layers_kit.conformance import judges, tls
from layers_kit.conformance.contract import Contract
from layers_kit.conformance.failures import (
    Exchange,
    Inconclusive,
    TransportTrouble,
    Violation,
    expect,
)
from layers_kit.conformance.observations import Observations
from layers_kit.conformance.pacing import Line, Pacer
from layers_kit.conformance.secrets import masked_headers

# Transport trouble worth a second try: the connection never carried the request (refused,
# reset while connecting, a connect timeout), so any request may be sent again; or the request
# is safe to repeat (GET, or a POST/PATCH with its Idempotency-Key, which D6 makes replay).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_RETRIES = (0.2, 0.5, 1.0)  # seconds before each new attempt
# An idle connection to the target is dropped after 1 s (by the kit's client and the proxy's
# pool), before the idle timeout of common servers closes it (gunicorn 2 s; uvicorn, Node and
# Apache 5 s, which is also httpx's default expiry): a request sent on a connection the target
# is closing at that moment gets no answer, and a POST without a key lost that way is not
# repeatable (the proxy would have to call it a transport failure).
KEEPALIVE_EXPIRY = 1.0


def _repeatable(method: str, headers: Any) -> bool:
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    return bool(headers and any(k.lower() == "idempotency-key" for k in dict(headers)))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before trying again: a 429, or a 503 with Retry-After (seconds or an
    HTTP date); None when the response is not one to retry."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None if response.status_code == 503 else 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 1.0


def _code(response: httpx.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _text(content: bytes, limit: int = 4000) -> str | None:
    if not content:
        return None
    text = content.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


class Client:
    """One API key's view of the target.

    Every request: honours `429`/`503` with `Retry-After` (bounded by `max_wait` seconds in
    all for the request, then the check is inconclusive: the target refused for its own
    reasons), records the exchange (keys masked) for evidence, and reports it to the run's
    observations, which judge D5 and the spec apart from the running check's rule. With the
    run's `pacer`, a rate-limit bucket that answered 429 is served one request at a time, in
    order (pacing.py).
    """

    def __init__(self, base_url: str, key: str | None, contract: Contract,
                 exchanges: list[Exchange], *, timeout: float = 30.0,
                 bearer: bool = False, observations: Observations | None = None,
                 check: str = "", max_wait: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None,
                 tls_settings: tls.TlsSettings = tls.DEFAULT,
                 pacer: Pacer | None = None) -> None:
        headers = {}
        if key:
            headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-Api-Key": key}
        # `transport`: an in-process target (tests feed the kit canned exchanges with it)
        self._client_cert = tls_settings.client_cert
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  timeout=timeout, verify=tls.context(tls_settings),
                                  transport=transport,
                                  limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY))
        self.contract = contract
        self.exchanges = exchanges
        self.observations = observations or Observations()
        self.check = check
        self.max_wait = max_wait
        self.sleep = sleep
        self.waited = 0.0
        self.pacer = pacer
        self._key = key

    def close(self) -> None:
        self._http.close()

    def _line(self, method: str, path: str) -> Line | None:
        """The line of the request's rate-limit bucket (the operation's x-rate-limit-class)."""
        if self.pacer is None:
            return None
        base = str(self._http.base_url).rstrip("/")
        op = self.contract.operation_for(method, base + path if path.startswith("/") else path)
        if op is None:
            return None
        return self.pacer.line(base, self._key, self.contract.operations[op].rate_class)

    def request(self, method: str, path: str, *, validate: bool = True,
                **kw: Any) -> httpx.Response:
        waited = 0.0
        line = self._line(method, path)
        ticket = line.join() if line is not None else None
        try:
            while True:
                if ticket is not None:
                    took = line.wait_turn(ticket, self.max_wait - waited)
                    if took is None:
                        ticket = None  # it left the line
                        raise Inconclusive(
                            f"{method} {path} waited more than {self.max_wait:g} s in all for "
                            "its turn, behind other requests of its rate-limit class that the "
                            f"target answered 429 (--max-wait {self.max_wait:g})",
                            needed="a target that serves the request within --max-wait")
                    waited += took
                    self.waited += took
                response = self._send(method, path, validate, kw)
                if line is not None:
                    line.count()
                delay = retry_after(response)
                if delay is None:
                    return response
                if response.status_code == 429 and line is not None:
                    joined = ticket is None
                    ticket = line.throttle(ticket)
                    if joined and not line.is_head(ticket):
                        continue  # its turn comes behind those already waiting
                if waited + delay > self.max_wait:
                    code = _code(response) or str(response.status_code)
                    raise Inconclusive(
                        f"{method} {path} was still answered {response.status_code} {code} "
                        f"after waiting {waited:g} s as Retry-After asked "
                        f"(--max-wait {self.max_wait:g})",
                        needed="a target that serves the request within --max-wait")
                self.sleep(delay)
                waited += delay
                self.waited += delay
        finally:
            if line is not None:
                line.leave(ticket)

    def _send(self, method: str, path: str, validate: bool, kw: dict) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kw)
                break
            except httpx.TransportError as exc:
                again = attempt < len(_RETRIES) and tls.find_tls_error(exc) is None and (
                    isinstance(exc, _NOT_SENT) or _repeatable(method, kw.get("headers")))
                if not again:
                    self._transport_failed(method, path, kw, exc)
                self.sleep(_RETRIES[attempt])
                attempt += 1
        req = response.request
        exchange = Exchange(
            req.method, str(req.url), masked_headers(req.headers.items()), _text(req.content),
            response.status_code, dict(response.headers), _text(response.content),
            operation=self.contract.operation_for(req.method, str(req.url)))
        response.exchange = exchange  # type: ignore[attr-defined]  # the decisive evidence
        self.exchanges.append(exchange)
        self.observations.saw(exchange, check=self.check,
                              replayed=response.headers.get("idempotent-replayed") == "true")
        if validate:
            self._judge(response, exchange)
        return response

    def _transport_failed(self, method: str, path: str, kw: dict, exc: Exception) -> None:
        """Record the exchange that got no answer and raise TransportTrouble: the network's
        fault (or the TLS setup's), never the target's."""
        request = self._http.build_request(method, path, **{k: v for k, v in kw.items()
                                                            if k != "timeout"})
        shown = masked_headers(request.headers.items())
        found = tls.find_tls_error(exc)
        reason = tls.describe(request.url.host, found) if found else \
            f"{type(exc).__name__}: {exc or 'no answer'}"
        if not found and request.url.scheme == "https" and not self._client_cert and \
                isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            reason += (f". Over TLS, {request.url.host} closing the connection this way is "
                       "also how a server that requires a client certificate refuses one "
                       "(TLS 1.3 checks it after the handshake): give --client-cert and "
                       "--client-key if it does")
        self.exchanges.append(Exchange(method, str(request.url), shown,
                                       _text(request.content), None, error=reason))
        raise TransportTrouble(f"{method} {path}: {reason}", tls=found is not None) from exc

    def _judge(self, response: httpx.Response, exchange: Exchange) -> None:
        """Record breaches of the spec and of D5 (D5 by the judge the proxy uses too); the
        SCHEMA and D5 checks judge them."""
        errors = self.contract.response_errors(response)
        if errors:
            self.observations.schema(f"{response.status_code}: " + "; ".join(errors),
                                     exchange, self.check)
        for finding in judges.envelope(response.status_code, response.headers.get,
                                       response.content,
                                       self.contract.operations.status_of_code):
            self.observations.d5(finding.message, exchange, self.check)
    # ---- the operations --------------------------------------------------------------------

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def regenerate(self, container_id: str, body: dict | None = None, *,
                   key: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        headers.update(kw.pop("headers", {}))
        extra = {"json": body} if body is not None else {}
        return self.post(f"/v1/content/{container_id}/regenerate", headers=headers,
                         **extra, **kw)

    def content(self, container_id: str) -> dict[str, Any]:
        r = self.get(f"/v1/content/{container_id}")
        expect(r.status_code == 200, "getContent answers 200 for the caller's container",
               expected=200, received=f"{r.status_code} {r.text[:200]}", response=r)
        return r.json()

    def wait_job(self, location: str, *, timeout: float, first: float = 0.2,
                 cap: float = 10.0, backoff: bool = True,
                 responses: list[httpx.Response] | None = None) -> list[dict[str, Any]]:
        """Poll a job until it ends: the documented backoff (x1.3, capped, with jitter), or a
        steady `first` interval when a check wants to see every stage.

        Returns every state observed, in order (and the responses, into `responses`).
        """
        seen: list[dict[str, Any]] = []
        delay = first
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(location)
            expect(r.status_code == 200, "getJob answers 200 for a job the caller started",
                   expected=200, received=f"{r.status_code} {r.text[:200]}", response=r)
            seen.append(r.json())
            if responses is not None:
                responses.append(r)
            if seen[-1]["status"] != "running":
                return seen
            if time.monotonic() > deadline:
                raise Violation(f"the job did not end within {timeout:g} s (--job-timeout)",
                                expected="completed, failed or canceled",
                                received=f"{seen[-1]['status']} at {seen[-1]['stage']}",
                                exchange=getattr(r, "exchange", None))
            if backoff:
                time.sleep(delay + random.uniform(0, min(0.5, delay / 4)))
                delay = min(delay * 1.3, cap)
            else:
                time.sleep(delay)


def new_key() -> str:
    return str(uuid.uuid4())
