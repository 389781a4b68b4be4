"""`layers-mock`: serve the mock on a socket, print what a client needs, stop cleanly on signals."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

# Connexion imports Starlette's test client at import time, which warns about httpx; noise for
# a server's user.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

import uvicorn  # noqa: E402

from mock.domain.fixtures import FixtureError  # noqa: E402
from mock.version import version  # noqa: E402
from mock.web.app import Config, build_service, create_app  # noqa: E402

_ENV = "LAYERS_MOCK_CONFIG"


class _Server(uvicorn.Server):
    """uvicorn re-raises the stopping signal after shutdown; we exit 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self):
        def stop(signum, frame) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="layers-mock",
        description="Stateful mock of the Layers content-regeneration API (openapi.yaml).")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4010, help="port (default 4010; 0 picks a free one)")
    p.add_argument("--fixtures", type=Path, help="fixtures YAML (default: the bundled ones)")
    p.add_argument("--store", default="memory",
                   help="memory (default), sqlite:///path/to/file.db or redis://host:port/db")
    p.add_argument("--stage-seconds", type=float, default=2.0,
                   help="duration of each of the 5 job stages (default 2.0)")
    p.add_argument("--clock", choices=("real", "manual"), default="real",
                   help="real time, or a clock moved only by POST /__mock/clock/advance")
    p.add_argument("--admin-token", help="require this X-Admin-Token on /__mock/ (and allow "
                                         "the control API on a non-loopback address)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (needs a shared store: sqlite or redis)")
    p.add_argument("--reset", action="store_true",
                   help="reload the fixtures even if a durable store already holds state")
    p.add_argument("--validate-responses", action="store_true",
                   help="check every response against the spec (a broken one becomes a 500)")
    p.add_argument("--idempotency-ttl", type=float, default=24 * 3600.0,
                   help="seconds an Idempotency-Key is remembered (default 86400)")
    p.add_argument("--retention", type=float, default=7 * 24 * 3600.0,
                   help="seconds ended jobs and superseded assets are kept (default 7 days)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"))
    return p.parse_args(argv)


def _config(args: argparse.Namespace) -> Config:
    return Config(host=args.host, store=args.store, fixtures=args.fixtures,
                  stage_seconds=args.stage_seconds, clock=args.clock,
                  admin_token=args.admin_token, validate_responses=args.validate_responses,
                  idempotency_ttl=args.idempotency_ttl, reset_on_start=args.reset,
                  retention_seconds=args.retention)


def worker_app():
    """Factory for uvicorn worker processes: the config travels in the environment."""
    raw = json.loads(os.environ[_ENV])
    raw["fixtures"] = Path(raw["fixtures"]) if raw["fixtures"] else None
    raw["reset_on_start"] = False  # the parent already seeded the shared store
    return create_app(Config(**raw))


def banner(service, url: str, config: Config, workers: int) -> str:
    fx = service.fixtures.data
    orgs = {o["id"]: o for o in fx["orgs"]}
    lines = [
        f"layers-mock listening on {url}",
        f"  spec {url}/openapi.yaml  {url}/openapi.json   docs {url}/docs   control {url}/__mock/",
        f"  store {config.store}   workers {workers}   clock {config.clock}   "
        f"stage {config.stage_seconds:g}s (a job takes {5 * config.stage_seconds:g}s)",
        "  API keys (X-Api-Key or Authorization: Bearer):",
    ]
    for k in fx["keys"]:
        org = orgs[k["org"]]
        lines.append(f"    {k['key']:<18} {org.get('name', org['id']):<6} "
                     f"{org['credits']:>13,} credits  {' '.join(k['scopes'])}")
    lines.append("  projects:")
    for p in fx["projects"]:
        lines.append(f"    {p['id']}  {orgs[p['org']].get('name', '')} "
                     f"({p.get('policy', 'auto_approve')})")
    lines.append("  containers:")
    for c in fx.get("containers") or []:
        lines.append(f"    {c['id']}  {c.get('label', '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = _config(args)
    if args.workers < 1:
        print("layers-mock: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and config.store == "memory":
        print("layers-mock: --workers needs a shared store: each worker would keep its own "
              "memory and clients would see requests split between them. Use --store "
              "sqlite:///path.db or --store redis://host:port/0.", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    try:
        service = build_service(config)
        app = create_app(config, service)
    except (FixtureError, ValueError, OSError) as exc:
        print(f"layers-mock: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a store that cannot be reached, a spec that does not load
        print(f"layers-mock: cannot start: {exc}", file=sys.stderr)
        return 2

    uv_config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                               access_log=args.log_level in ("info", "debug"), lifespan="on")
    try:
        sock = uv_config.bind_socket()
    except SystemExit:
        print(f"layers-mock: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(banner(service, f"http://{shown}:{port}", config, args.workers), flush=True)

    if args.workers == 1:
        _Server(uv_config).run(sockets=[sock])
        service.store.close()
        print("layers-mock stopped", flush=True)
        return 0
    service.store.close()
    os.environ[_ENV] = json.dumps({**asdict(config), "fixtures": str(config.fixtures or "")})
    from uvicorn.supervisors import Multiprocess

    multi_config = uvicorn.Config("mock.cli:worker_app", factory=True, host=args.host,
                                  port=port, workers=args.workers, log_level=args.log_level,
                                  access_log=False)
    Multiprocess(multi_config, sockets=[sock]).run()
    print("layers-mock stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
