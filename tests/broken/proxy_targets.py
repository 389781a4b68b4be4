"""A tiny server that breaks the contract on request, to prove the validating proxy (D13).

`python -m tests.broken.proxy_targets --port 0` prints `listening on http://...`. By default it
answers every operation of the spec with the documented example of its success response and
the documented headers, which the proxy must accept. A request header `X-Broken: <name>` makes
that answer break exactly one rule; `BROKEN` maps each name to the proxy check that must name
it. Never shipped.

Not breaks: `X-Big-Body: N` makes a valid answer over N bytes, `X-Slow: S` answers after S
seconds; `GET /__echo` (outside the contract) answers the request's headers as JSON, with a
response header `X-Hop-Out` that its `Connection` header names hop-by-hop. With `--certfile`
and `--keyfile` it serves HTTPS (and with `--client-ca`, requires a client certificate that
CA issued); it then prints `listening on http://... (TLS)`, the scheme to read as https.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import random
import re
import socket
import ssl

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from layers_kit.contract.operations import table, template_regex
from layers_kit.contract.spec import load_spec, resolve

# X-Broken name -> the proxy check that must report it
BROKEN = {
    "response-schema": "server.response-schema",
    "undocumented-status": "server.response-schema",
    "no-request-id": "server.request-id",
    "not-an-envelope": "server.error-envelope",
    "request-id-mismatch": "server.error-envelope",
    "code-status-mismatch": "server.error-envelope",
    "location-mismatch": "server.location",
    "no-etag": "server.job-etag",
    "stale-etag": "server.job-etag",
    "stage-back": "server.job-progress",
    "replayed-first-use": "server.idempotent-replay",
    "replay-differs": "server.idempotent-replay",
    "runs-again": "server.idempotent-replay",
    "accepts-invalid": "server.rejects-invalid-request",
}

_ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ROUTES = [(re.compile(template_regex(o.path)), o.method, o.operation_id, o.node)
           for o in table()]


def _ulid() -> str:
    return "".join(random.choice(_ULID) for _ in range(26))


def _success(operation: dict) -> tuple[int, dict]:
    """The operation's documented success status and the first example of its body."""
    status = min(s for s in operation["responses"] if str(s).startswith("2"))
    media = resolve(operation["responses"][status])["content"]["application/json"]
    example = media.get("example")
    if example is None:
        example = resolve(next(iter(media["examples"].values())))["value"]
    return int(status), copy.deepcopy(example)


class Target:
    """The server's memory: answers per Idempotency-Key, reads per job."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.reads: dict[str, int] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.answer(request)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        broken = request.headers.get("x-broken", "")
        if request.headers.get("x-slow"):
            await asyncio.sleep(float(request.headers["x-slow"]))
        if request.url.path == "/__echo":
            return Response(json.dumps(request.headers.items()).encode(), 200, {
                "Content-Type": "application/json", "Connection": "keep-alive, X-Hop-Out",
                "X-Hop-Out": "must not pass the proxy", "X-End-To-End": "kept"})
        rid = "req_" + _ulid()
        route = next(((op_id, op) for pattern, method, op_id, op in _ROUTES
                      if pattern.match(request.url.path) and method == request.method), None)
        if route is None:
            return self._error(404, "NOT_FOUND", rid, broken)
        op_id, operation = route
        await request.body()
        if broken in ("not-an-envelope", "request-id-mismatch", "code-status-mismatch",
                      "no-request-id"):
            return self._error(404, "NOT_FOUND", rid, broken)
        if broken == "undocumented-status":
            return Response(b"", 418, {"X-Request-Id": rid})
        status, body = _success(operation)
        headers = {"X-Request-Id": rid}
        cls = operation.get("x-rate-limit-class")
        if cls:
            headers["X-RateLimit-Endpoint-Class"] = cls
        if op_id == "getJob":
            body = self._job_read(request.url.path, body, broken)
            headers["ETag"] = "stale" if broken == "stale-etag" else \
                '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[
                    :16] + '"'
            if broken == "no-etag":
                del headers["ETag"]
        if status == 202 and "locationUrl" in body:
            job = "job_" + _ulid()
            body.update(jobId=job, locationUrl=f"/v1/jobs/{job}")
            headers["Location"] = "/v1/jobs/elsewhere" if broken == "location-mismatch" \
                else body["locationUrl"]
        if broken == "response-schema":
            body = {k: v for k, v in list(body.items())[:1]}
        if request.headers.get("x-big-body"):  # not a break: a valid answer over 1 MiB
            body["caption"] = "x" * int(request.headers["x-big-body"])
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        return self._idempotent(request, status, data, headers, broken)

    def _idempotent(self, request: Request, status: int, data: bytes, headers: dict,
                    broken: str) -> Response:
        key = request.headers.get("idempotency-key")
        if broken == "replayed-first-use":
            headers["Idempotent-Replayed"] = "true"
        if key is None or request.method not in ("POST", "PATCH"):
            return Response(data, status, headers)
        first = self.answers.get(key)
        if first is None:
            self.answers[key] = (status, data)
        elif broken == "replay-differs":
            headers["Idempotent-Replayed"] = "true"
        elif broken != "runs-again":
            headers["Idempotent-Replayed"] = "true"
            status, data = first
        return Response(data, status, headers)

    def _job_read(self, path: str, body: dict, broken: str) -> dict:
        """Successive reads of a job move forward (or back, when asked)."""
        n = self.reads[path] = self.reads.get(path, 0) + 1
        stages = ["queued", "planning", "generating_visuals", "assembling", "finalizing"]
        if broken == "stage-back":
            stages.reverse()
        i = min(n - 1, 4)
        job_id = path.rsplit("/", 1)[1]
        body.update(jobId=job_id, locationUrl=path, status="running", stage=stages[i],
                    progress=[0, 0.2, 0.4, 0.6, 0.8][i] if broken != "stage-back" else
                    [0.8, 0.6, 0.4, 0.2, 0][i])
        for gone in ("finishedAt", "result", "error"):
            body.pop(gone, None)
        return body

    @staticmethod
    def _error(status: int, code: str, rid: str, broken: str) -> Response:
        inner = {"code": code, "message": "No such resource.", "requestId": rid}
        if broken == "request-id-mismatch":
            inner["requestId"] = "req_" + _ulid()
        if broken == "code-status-mismatch":
            inner["code"] = "CONFLICT"
        body = {"message": "not found"} if broken == "not-an-envelope" else {"error": inner}
        headers = {} if broken == "no-request-id" else {"X-Request-Id": rid}
        return Response(json.dumps(body).encode(), status, headers,
                        media_type="application/json")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--client-ca", help="require a client certificate issued by this CA")
    args = p.parse_args()
    load_spec()
    sock = socket.socket()
    sock.bind((args.host, args.port))
    sock.listen(128)
    tls = {}
    if args.certfile:
        tls = {"ssl_certfile": args.certfile, "ssl_keyfile": args.keyfile}
        if args.client_ca:
            tls.update(ssl_ca_certs=args.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    print(f"listening on http://{args.host}:{sock.getsockname()[1]}"
          + (" (TLS)" if tls else ""), flush=True)
    uvicorn.Server(uvicorn.Config(Target(), log_level="warning", lifespan="off", **tls)).run(
        sockets=[sock])


if __name__ == "__main__":
    main()
