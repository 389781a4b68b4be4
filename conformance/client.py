"""The kit's HTTP client: records every exchange, masks keys, checks every response (D10).

Every response a business-rule check receives is validated against the contract with
openapi-core and against the D5 envelope rules; a breach is a violation of the running check.
"""

from __future__ import annotations

import functools
import random
import ssl
import time
import uuid
from typing import Any

import httpx

from conformance.contract import Contract
from conformance.failures import Exchange, Unreachable, Violation, expect

SECRET_HEADERS = ("x-api-key", "authorization", "x-admin-token")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one per client costs ~50 ms of CPU."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def mask(value: str) -> str:
    return value[:8] + "…" if len(value) > 8 else "…"


def _masked(headers: httpx.Headers) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        if k.lower() == "authorization" and " " in v:
            scheme, _, token = v.partition(" ")
            out[k] = f"{scheme} {mask(token)}"
        else:
            out[k] = mask(v) if k.lower() in SECRET_HEADERS else v
    return out


def _text(content: bytes, limit: int = 4000) -> str | None:
    if not content:
        return None
    text = content.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


class Client:
    """One API key's view of the target."""

    def __init__(self, base_url: str, key: str | None, contract: Contract,
                 exchanges: list[Exchange], *, timeout: float = 30.0,
                 bearer: bool = False) -> None:
        headers = {}
        if key:
            headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-Api-Key": key}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  timeout=timeout, verify=_tls())
        self.contract = contract
        self.exchanges = exchanges

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, validate: bool = True,
                **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            request = self._http.build_request(method, path, **{k: v for k, v in kw.items()
                                                                if k != "timeout"})
            self.exchanges.append(Exchange(method, str(request.url), _masked(request.headers),
                                           _text(request.content), None, error=str(exc)))
            raise Unreachable(f"{method} {path}: {exc}") from exc
        req = response.request
        self.exchanges.append(Exchange(
            req.method, str(req.url), _masked(req.headers), _text(req.content),
            response.status_code, dict(response.headers), _text(response.content)))
        if validate:
            self._check_contract(response)
        return response

    def _check_contract(self, response: httpx.Response) -> None:
        errors = self.contract.response_errors(response)
        expect(not errors, "the response does not match openapi.yaml",
               expected="a response documented by the contract",
               received=f"{response.status_code}: " + "; ".join(errors))
        rid = response.headers.get("x-request-id")
        expect(bool(rid), "every response carries X-Request-Id (D5)",
               received=f"{response.status_code} without X-Request-Id")
        if response.status_code >= 400:
            body = response.json()
            expect(body["error"]["requestId"] == rid,
                   "on errors X-Request-Id equals error.requestId (D5)",
                   expected=rid, received=body["error"]["requestId"])

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
               expected=200, received=f"{r.status_code} {r.text[:200]}")
        return r.json()

    def wait_job(self, location: str, *, timeout: float, first: float = 0.2,
                 cap: float = 10.0, backoff: bool = True) -> list[dict[str, Any]]:
        """Poll a job until it ends: the documented backoff (x1.3, capped, with jitter), or a
        steady `first` interval when a check wants to see every stage.

        Returns every state observed, in order.
        """
        seen: list[dict[str, Any]] = []
        delay = first
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(location)
            expect(r.status_code == 200, "getJob answers 200 for a job the caller started",
                   expected=200, received=f"{r.status_code} {r.text[:200]}")
            seen.append(r.json())
            if seen[-1]["status"] != "running":
                return seen
            if time.monotonic() > deadline:
                raise Violation(f"the job did not end within {timeout:g} s",
                                expected="completed, failed or canceled",
                                received=f"{seen[-1]['status']} at {seen[-1]['stage']}")
            if backoff:
                time.sleep(delay + random.uniform(0, min(0.5, delay / 4)))
                delay = min(delay * 1.3, cap)
            else:
                time.sleep(delay)


def new_key() -> str:
    return str(uuid.uuid4())
