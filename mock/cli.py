"""`layers-mock`: serve the mock on a socket, print what a client needs, stop cleanly on signals."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import warnings

# Connexion imports Starlette's test client at import time, which warns about httpx; noise for
# a server's user.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

import uvicorn  # noqa: E402

from layers_kit.contract.version import version_line  # noqa: E402
from layers_kit.mock import config as config_mod  # noqa: E402
from layers_kit.mock.config import Config  # noqa: E402
from layers_kit.mock.domain.fixtures import FixtureError  # noqa: E402
from layers_kit.mock.web import server  # noqa: E402
from layers_kit.mock.web.app import build_service, create_app  # noqa: E402
from layers_kit.serving.server import SignalledServer  # noqa: E402

_ENV = "LAYERS_MOCK_CONFIG"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="layers-mock",
        description="Stateful mock of the Layers content-regeneration API (openapi.yaml).")
    p.add_argument("--version", action="version", version=f"%(prog)s {version_line()}")
    config_mod.add_arguments(p)  # every option and its default come from mock.config.Config
    return p.parse_args(argv)


def worker_app(raw: str | None = None):
    """Factory for uvicorn worker processes: the config travels as the factory's argument, in
    the pipe multiprocessing spawns each worker with (never in the environment, which
    /proc/<pid>/environ shows); `LAYERS_MOCK_CONFIG` is still read when no argument comes."""
    config = Config.from_json(json.loads(raw if raw is not None else os.environ[_ENV]))
    server.GuardedHttpToolsProtocol.read_timeout = config.read_timeout
    # The parent already seeded the shared store.
    return create_app(config.replace(reset_on_start=False))


def banner(service, url: str, config: Config, workers: int) -> str:
    fx = service.fixtures.data
    orgs = {o["id"]: o for o in fx["orgs"]}
    lines = [
        f"layers-mock listening on {url}",
        f"  spec {url}/openapi.yaml  {url}/openapi.json   docs {url}/docs   control {url}/__mock/",
        f"  store {config.store}   workers {workers}   clock {config.clock}   "
        f"stage {config.stage_seconds:g}s (a job takes {5 * config.stage_seconds:g}s)",
        f"  rate limits {config.rate_limits}   cors "
        + ("off" if not config.cors else ", ".join(config.cors_origins) or "any origin"),
        "  API keys (X-Api-Key or Authorization: Bearer):",
    ]
    for k in fx["keys"]:
        org = orgs[k["org"]]
        tier = k.get("rateLimitTier")
        lines.append(f"    {k['key']:<18} {org.get('name', org['id']):<6} "
                     f"{org['credits']:>13,} credits  {' '.join(k['scopes'])}"
                     + (f"  (always rate-limited: {tier})" if tier else ""))
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
    try:
        config = config_mod.from_args(args)  # refuses values it cannot run with, at start
    except config_mod.ConfigError as exc:
        print(f"layers-mock: {exc}", file=sys.stderr)
        return 2
    # Read once, then gone from the process: its environment block too, which
    # /proc/<pid>/environ shows (os.environ.pop alone left it there). Workers get the token's
    # keyed MAC (Config.to_json) through their spawn pipe, not the variable.
    config_mod.forget_environment_token()
    if config.workers > 1 and config.store == "memory":
        print("layers-mock: --workers needs a shared store: each worker would keep its own "
              "memory and clients would see requests split between them. Use --store "
              "sqlite:///path.db or --store redis://host:port/0.", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    try:
        service = build_service(config)
        app = create_app(config, service)
    except (FixtureError, ValueError, OSError) as exc:
        print(f"layers-mock: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a store that cannot be reached, a spec that does not load
        print(f"layers-mock: cannot start: {exc}", file=sys.stderr)
        return 2

    server.GuardedHttpToolsProtocol.read_timeout = config.read_timeout
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level=config.log_level,
                               access_log=config.log_level in ("info", "debug"), lifespan="on",
                               http=server.PROTOCOL)
    try:
        sock = uv_config.bind_socket()
    except SystemExit:
        print(f"layers-mock: cannot listen on {config.host}:{config.port}", file=sys.stderr)
        return 2
    from layers_kit.mock.workers import BoundedMultiprocess, catch_early_signals

    early = catch_early_signals()  # a stop asked for before the server runs is kept
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(banner(service, f"http://{shown}:{port}", config, config.workers), flush=True)

    if config.workers == 1:
        if not early:
            SignalledServer(uv_config).run(sockets=[sock])
        service.store.close()
        print("layers-mock stopped", flush=True)
        return 0
    service.store.close()
    factory = functools.partial(worker_app, json.dumps(config.to_json()))
    multi_config = uvicorn.Config(factory, factory=True, host=config.host,
                                  port=port, workers=config.workers, log_level=config.log_level,
                                  access_log=False, http=server.PROTOCOL)
    BoundedMultiprocess(multi_config, sockets=[sock], early=early).run()
    print("layers-mock stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
