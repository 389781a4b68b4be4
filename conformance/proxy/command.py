"""`layers-conformance proxy`: put the contract between a client and a real server (D13).

It listens, forwards every request to `--target` unchanged, judges each exchange, lists what it
found at `GET /__proxy/violations`, and on SIGINT or SIGTERM writes its reports and exits:
0 when the server kept the contract, 1 when it broke it (or a client did, with
`--fail-on-client-violations`), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from layers_kit.conformance.proxy.app import ProxyApp
from layers_kit.conformance.proxy.judge import Judge
from layers_kit.conformance.proxy.reports import REPORT_SUFFIXES, summary, write, write_junit
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
    p.add_argument("--fail-on-client-violations", action="store_true",
                   help="exit 1 when a client broke the contract too (default: only the "
                        "server's violations fail)")
    p.add_argument("--examples", type=int, default=5,
                   help="example exchanges kept per check (default 5; the rest are counted)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the target's answer (default 60)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"))


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
    judge = Judge(target, args.examples)  # a worker process that has loaded the contract
    config = uvicorn.Config(ProxyApp(target, judge, timeout=args.timeout), host=host,
                            port=port, lifespan="on", log_level=args.log_level,
                            access_log=args.log_level in ("info", "debug"))
    sock.listen(config.backlog)  # queue connections from now on: the banner below is a promise
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"layers-conformance proxy listening on http://{shown}:{bound_port} -> {target}\n"
          f"  violations so far: http://{shown}:{bound_port}/__proxy/violations\n"
          "  stop with Ctrl-C or SIGTERM to write the reports", flush=True)
    SignalledServer(config).run(sockets=[sock])
    data = summary(judge.close(), target=target, fail_on_client=args.fail_on_client_violations)
    for path in args.report:
        write(path, data)
    if args.junit_xml:
        write_junit(args.junit_xml, data)
    _print_summary(data)
    return data["exitStatus"]


def _print_summary(data: dict) -> None:
    c = data["counts"]
    print(f"layers-conformance proxy stopped: {c.get('exchanges', 0)} exchanges, "
          f"{c.get('checked', 0)} checked, {data['serverViolations']} server and "
          f"{data['clientViolations']} client violation(s)", flush=True)
    for r in data["checks"]:
        if r["violations"]:
            print(f"  {r['side']:<6} {r['rule']:<6} {r['check']:<34} {r['violations']:>6}  "
                  f"{r['examples'][0]['message']}", flush=True)
