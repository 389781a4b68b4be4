"""`layers-conformance proxy`: put the contract between a client and a real server (D13).

It listens, forwards every request to `--target` unchanged, judges each exchange, lists what it
found at `GET /__proxy/violations`, and on SIGINT or SIGTERM writes its reports and exits:
0 when the server kept the contract; 1 when it broke it (or a client did, with
`--fail-on-client-violations`); 2 on a usage error, or "could not judge": no violation, but a
transport failure kept an exchange from being judged (TLS, connection refused or reset, a
timeout, no free connection to the target), or more than `--max-unjudged` percent of the
exchanges went unjudged because the judge fell behind.

It serves with the guarded protocol of serving/protocol.py (a client has `--read-timeout`
seconds to send a whole request; a header section over 64 KiB gets 431), and its upstream
connections use the kit's TLS configuration (conformance/tls.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from layers_kit.conformance import options, tls
from layers_kit.conformance.proxy.app import DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_TIMEOUT, ProxyApp
from layers_kit.conformance.proxy.judge import MAX_PENDING, Judge
from layers_kit.conformance.proxy.memory import IDEMPOTENCY_TTL, RETENTION
from layers_kit.conformance.proxy.reports import (
    DEFAULT_MAX_UNJUDGED,
    REPORT_SUFFIXES,
    summary,
    write,
    write_junit,
)
from layers_kit.serving import protocol
from layers_kit.serving.server import SignalledServer

DEFAULT_LISTEN = "127.0.0.1:4020"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "proxy", help="forward traffic to a server and check every exchange against the "
                      "contract",
        description="A validating proxy: point a client (or an integration test suite) at it; "
                    "it forwards to --target and reports every exchange that breaks the "
                    "contract. Stop it with Ctrl-C or SIGTERM to get the reports and the exit "
                    "status.")
    p.add_argument("--target", required=True, help="the server's base URL, e.g. "
                                                   "https://staging.example.com")
    p.add_argument("--listen", default=DEFAULT_LISTEN,
                   help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN}; port 0 picks a "
                        "free one)")
    p.add_argument("--junit-xml", type=Path, help="write JUnit XML here on stop")
    p.add_argument("--report", type=Path, action="append", default=[],
                   help="write a report on stop: .md, .html or .json (repeatable)")
    p.add_argument("--client-rules", action="store_true",
                   help="also judge each client's behaviour over time by the client rules "
                        "C1-C6 (retries keep their Idempotency-Key, Retry-After honoured, "
                        "polls paced with If-None-Match, ...): reported as client violations")
    p.add_argument("--fail-on-client-violations", action="store_true",
                   help="exit 1 when a client broke the contract too (default: only the "
                        "server's violations fail)")
    p.add_argument("--examples", type=int, default=5,
                   help="example exchanges kept per check (default 5; the rest are counted)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the target's answer (default 60; past it the "
                        "client gets 504 and the run could not judge)")
    p.add_argument("--read-timeout", type=float, default=protocol.DEFAULT_READ_TIMEOUT,
                   metavar="S", help="seconds a client has to send a whole request, headers "
                                     "and body; slower connections are closed (default "
                                     f"{protocol.DEFAULT_READ_TIMEOUT:g})")
    p.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                   metavar="N", help="connections to the target at once (default "
                                     f"{DEFAULT_MAX_CONNECTIONS})")
    p.add_argument("--pool-timeout", type=float, default=DEFAULT_POOL_TIMEOUT, metavar="S",
                   help="seconds a request may wait for a free connection to the target "
                        "before the client gets 503 with Retry-After (default "
                        f"{DEFAULT_POOL_TIMEOUT:g})")
    p.add_argument("--max-pending", type=int, default=MAX_PENDING, metavar="N",
                   help="arrivals and exchanges that may wait for the judge; past it exchanges "
                        f"are forwarded unjudged (default {MAX_PENDING})")
    p.add_argument("--max-unjudged", type=float, default=DEFAULT_MAX_UNJUDGED,
                   metavar="PERCENT", help="the share of exchanges that may go unjudged in a "
                   "run that passes; above it the run could not judge, exit 2 (default "
                   f"{DEFAULT_MAX_UNJUDGED:g})")
    p.add_argument("--idempotency-ttl", type=float, default=IDEMPOTENCY_TTL, metavar="S",
                   help="seconds the target remembers an Idempotency-Key (D6: 24 hours); set "
                        "it as the target is set (the mock's --idempotency-ttl): a key reused "
                        "after it is new, and the proxy forgets it then "
                        f"(default {IDEMPOTENCY_TTL:g})")
    p.add_argument("--retention", type=float, default=RETENTION, metavar="S",
                   help="seconds the target keeps ended jobs (the mock's --retention); the "
                        "proxy forgets a job's reads after so long without one "
                        f"(default {RETENTION:g})")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name under which /__proxy/ answers, besides loopback names "
                        "and the listen address (repeatable)")
    t = p.add_argument_group("TLS to the target (conformance/tls.py: the system trust store "
                             "by default, which honours SSL_CERT_FILE and SSL_CERT_DIR)")
    for name in ("ca_bundle", "client_cert", "client_key"):
        meta = options.FIELDS[name].metadata
        t.add_argument("--" + name.replace("_", "-"), metavar="PATH",
                       default=getattr(tls.DEFAULT, name),
                       help=f"{meta['help']} (or {meta['env']})")
    t.add_argument("--insecure", action="store_true", default=tls.DEFAULT.insecure,
                   help="verify no certificate of the target (every report says so)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"))


def tls_settings(args: argparse.Namespace) -> tls.TlsSettings:
    """The upstream's TLS settings: the options, else the kit's environment variables."""
    def given(name: str) -> str | None:
        return getattr(args, name) or os.environ.get(options.FIELDS[name].metadata["env"]) \
            or None
    return tls.TlsSettings(given("ca_bundle"), given("client_cert"), given("client_key"),
                           args.insecure)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen takes HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _usage_errors(args: argparse.Namespace) -> list[str]:
    errors = []
    target = urlsplit(args.target)
    if target.scheme not in ("http", "https") or not target.netloc:
        errors.append(f"--target must be an http(s) URL, got {args.target!r}")
    try:
        _listen(args.listen)
    except ValueError as exc:
        errors.append(str(exc))
    errors += [f"--report must end in {', '.join(REPORT_SUFFIXES)}: {path}"
               for path in args.report if path.suffix.lower() not in REPORT_SUFFIXES]
    if args.examples < 0:
        errors.append("--examples must be 0 or more")
    for name in ("timeout", "read_timeout", "pool_timeout", "idempotency_ttl", "retention"):
        if getattr(args, name) <= 0:
            errors.append(f"--{name.replace('_', '-')} must be more than 0")
    if args.max_connections < 1 or args.max_pending < 1:
        errors.append("--max-connections and --max-pending must be 1 or more")
    if not 0 <= args.max_unjudged <= 100:
        errors.append("--max-unjudged is a percentage, 0 to 100")
    settings = tls_settings(args)
    if settings.client_key and not settings.client_cert:
        errors.append("--client-key needs --client-cert")
    try:
        tls.context(settings)
    except tls.TlsSetupError as exc:
        errors.append(str(exc))
    return errors


def run(args: argparse.Namespace) -> int:
    errors = _usage_errors(args)
    if errors:
        for e in errors:
            print(f"layers-conformance proxy: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    target = args.target.rstrip("/")
    host, port = _listen(args.listen)
    bind = uvicorn.Config(lambda *a: None, host=host, port=port)
    try:
        sock = bind.bind_socket()
    except SystemExit:
        print(f"layers-conformance proxy: cannot listen on {args.listen}", file=sys.stderr)
        return 2
    settings = tls_settings(args)
    # a worker process that has loaded the contract
    judge = Judge(target, args.examples, max_pending=args.max_pending,
                  client_rules=args.client_rules, ttl=args.idempotency_ttl,
                  retention=args.retention)
    app = ProxyApp(target, judge, timeout=args.timeout, tls_settings=settings,
                   max_connections=args.max_connections, pool_timeout=args.pool_timeout,
                   own_hosts=[host, *args.allow_host])
    protocol.GuardedHttpToolsProtocol.read_timeout = args.read_timeout
    # the target's Date and Server pass through once: the proxy's server adds neither
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_level=args.log_level,
                            access_log=args.log_level in ("info", "debug"),
                            http=protocol.PROTOCOL, server_header=False, date_header=False)
    sock.listen(config.backlog)  # queue connections from now on: the banner below is a promise
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"layers-conformance proxy listening on http://{shown}:{bound_port} -> {target}\n"
          f"  violations so far: http://{shown}:{bound_port}/__proxy/violations\n"
          f"  {settings.describe()}\n"
          "  stop with Ctrl-C or SIGTERM to write the reports", flush=True)
    SignalledServer(config).run(sockets=[sock])
    data = summary(judge.close(), target=target, fail_on_client=args.fail_on_client_violations,
                   max_unjudged=args.max_unjudged,
                   tls=settings.describe() if target.startswith("https:") else None)
    for path in args.report:
        write(path, data)
    if args.junit_xml:
        write_junit(args.junit_xml, data)
    _print_summary(data)
    return data["exitStatus"]


def _print_summary(data: dict) -> None:
    c = data["counts"]
    print(f"layers-conformance proxy stopped: {c.get('exchanges', 0)} exchanges, "
          f"{c.get('checked', 0)} checked, {data['unjudged']} unjudged, "
          f"{data['transportFailures']} transport failure(s), {data['serverViolations']} "
          f"server and {data['clientViolations']} client violation(s): {data['verdict']} "
          f"(exit {data['exitStatus']})", flush=True)
    for line in data["couldNotJudge"]:
        print(f"  could not judge: {line}", flush=True)
    for e in data["transport"]["examples"][:3]:
        print(f"  transport {e['kind']:<8} {e['message']}", flush=True)
    for r in data["checks"]:
        if r["violations"]:
            print(f"  {r['side']:<6} {r['rule']:<6} {r['check']:<34} {r['violations']:>6}  "
                  f"{r['examples'][0]['message']}", flush=True)
