"""`make soak`: a bounded soak of the real mock on loopback. Not part of the suite.

Starts `layers-mock` with its default settings except `--idempotency-ttl 60 --retention 60`
(one store per run: memory, sqlite or redis; `--store all` runs the three one after the other;
with redis, the Redis server's RSS is sampled and judged as the mock's is; with sqlite, the
database files' sizes are printed at the end),
then runs a mixed load from a few concurrent clients for `--seconds` (default 170, plus the
warm-up: 3 minutes):

    generates    10 %  a fresh Idempotency-Key each, 1-5 variants (so the per-org bound on
                       containers, `--max-containers` 5,000, is reached within the run)
    keyed retry   5 %  a recent generate sent again, same key and body: must replay its 202
                       byte for byte
    regenerates  10 %  of recent containers, a fresh key each (409 when the container is busy)
    schedules     5 %  of containers whose generation completed (201, or 409 past the bound
                       of scheduled posts per container)
    reads        70 %  jobs, containers, assets, review policies, and 404s

First the org is filled to its bound of containers (`--max-containers`, 5,000: 1,000
generates of 5 variants sent straight to the mock, `--no-fill` skips it), so that the windows
measure the steady state of a mock that has run for a while and not the filling of that
documented bound (at 100 req/s, through the proxy, the load alone reaches it only after about
170 s). After a warm-up of one job's length (`--warmup`, 10 s: before it no job has ended, so the
first window would measure a lighter load than every later one), every `--window` seconds it
prints the requests done, req/s, the server's RSS and its CPU per request (its process and
workers, from /proc; the CPU per request tells the mock's cost from the machine's load) and
the 5xx seen. At the end: req/s in the first and last windows,
and the RSS slope in MiB per 10,000 requests over the samples after the first TTL (60 s: by
then every kind of record the load makes has started to expire). It exits 1 on any 5xx, on a
keyed retry that did not replay, on a slope of 1 MiB per 10,000 requests or more, or when the
last window's throughput is not within 15 % of the first's (`--tolerance`).

With `--proxy` the same load goes through the validating proxy in front of the mock (`python -m
layers_kit.conformance proxy --target <mock> --listen 127.0.0.1:0 --idempotency-ttl 60
--retention 60`: set as the mock is, so it forgets what the mock forgets; its URL read from its
banner as tests/support/proxy.py does). Each window then also samples the proxy's RSS and CPU
(its process and its descendants: the judge process), the proxy's RSS slope is held to the same
bound as the mock's, and at the end the proxy gets SIGTERM, writes its JSON report (in the
run's temporary directory) and exits; the run also fails when that exit status is not 0 (1: the
mock broke the contract; 2: the proxy could not judge, e.g. its judge fell behind).

Everything runs on 127.0.0.1, is bounded in time (`--seconds` at most 900) and stops every
process it started by its pid: the mock and the proxy with their process groups (workers, the
judge), and the Redis server `--store redis` starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from layers_kit.mock.launcher import RunningMock, start_mock, start_process

KEY = {"X-Api-Key": "lp_test_full"}
PROJECT = "prj_00000000-0000-4000-8000-000000000002"  # auto_approve: containers can be scheduled
SEED = ["cnt_00000000-0000-4000-8000-000000000103"]
TTL = 60  # --idempotency-ttl and --retention of the soaked mock
STAGE = 2.0  # the mock's default --stage-seconds: a job takes 10 s
MAX_CONTAINERS = 5000  # the mock's default --max-containers per org


def family(pid: int) -> list[int]:
    """The process and all its descendants (the mock's workers; the proxy's judge process and
    the helpers multiprocessing starts), from /proc."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of the process and its descendants."""
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_kib(pid: int) -> int:
    """RSS of the process and its descendants, KiB."""
    total = 0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


class Load:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.containers: list[str] = list(SEED)
        self.completed: list[tuple[float, str]] = []  # (when its job ends, container id)
        self.jobs: list[str] = []
        self.assets: list[tuple[str, str]] = []
        self.sent: list[tuple[str, dict, bytes]] = []  # (key, body, first answer)
        self.done = 0
        self.generated = 0
        self.replays = 0
        self.bad_replays = 0
        self.server_errors = 0
        self.statuses: dict[int, int] = {}

    @staticmethod
    def _keep(items: list, item, limit: int = 500) -> None:
        items.append(item)
        if len(items) > limit:
            del items[: len(items) - limit]

    async def one(self) -> None:
        roll = random.random()
        c = self.client
        now = time.monotonic()
        if roll < 0.10:
            key = str(uuid.uuid4())
            body = {"brief": {"topic": "Soak"}, "variantCount": random.randint(1, 5)}
            r = await c.post(f"/v1/projects/{PROJECT}/content", json=body,
                             headers={**KEY, "Idempotency-Key": key})
            if r.status_code == 202:
                self.generated += 1
                data = r.json()
                for cid in data["containerIds"]:
                    self._keep(self.containers, cid)
                    self._keep(self.completed, (now + 5 * STAGE + 1, cid), 2000)
                self._keep(self.jobs, data["jobId"])
                self._keep(self.sent, (key, body, r.content), 200)
        elif roll < 0.15 and self.sent:
            key, body, first = random.choice(self.sent)
            r = await c.post(f"/v1/projects/{PROJECT}/content", json=body,
                             headers={**KEY, "Idempotency-Key": key})
            self.replays += 1
            # Past the TTL (60 s) the key is forgotten and the retry runs anew: not an error.
            if r.status_code == 202 and r.headers.get("idempotent-replayed") == "true" and \
                    r.content != first:
                self.bad_replays += 1
        elif roll < 0.25:
            r = await c.post(f"/v1/content/{random.choice(self.containers)}/regenerate",
                             json={"brief": {"angle": "again"}},
                             headers={**KEY, "Idempotency-Key": str(uuid.uuid4())})
            if r.status_code == 202:
                self._keep(self.jobs, r.json()["jobId"])
        elif roll < 0.30:
            ready = [cid for at, cid in self.completed if at <= now][-200:] or SEED
            r = await c.post(f"/v1/content/{random.choice(ready)}/schedule",
                             json={"scheduledFor": "2031-01-01T09:00:00Z"}, headers=KEY)
        elif roll < 0.45 and self.jobs:
            r = await c.get(f"/v1/jobs/{random.choice(self.jobs)}", headers=KEY)
        elif roll < 0.65:
            cid = random.choice(self.containers)
            r = await c.get(f"/v1/content/{cid}", headers=KEY)
            if r.status_code == 200:
                for a in r.json()["assets"][:1]:
                    self._keep(self.assets, (cid, a["assetId"]))
        elif roll < 0.75 and self.assets:
            cid, aid = random.choice(self.assets)
            r = await c.get(f"/v1/content/{cid}/assets/{aid}", headers=KEY)
        elif roll < 0.95:
            r = await c.get(f"/v1/projects/{PROJECT}/content-review-policy", headers=KEY)
        else:
            r = await c.get(f"/v1/content/cnt_{uuid.uuid4()}", headers=KEY)
        self.done += 1
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        if r.status_code >= 500:
            self.server_errors += 1

    async def worker(self, until: float) -> None:
        while time.monotonic() < until:
            try:
                await self.one()
            except httpx.TransportError:
                self.statuses[0] = self.statuses.get(0, 0) + 1
                self.server_errors += 1


async def fill(url: str, clients: int) -> None:
    """Fill the org to its bound of containers, straight at the mock."""
    started = time.monotonic()
    body = {"brief": {"topic": "Fill"}, "variantCount": 5}
    left = iter(range(MAX_CONTAINERS // 5))

    async def one(c: httpx.AsyncClient) -> None:
        for _ in left:
            r = await c.post(f"/v1/projects/{PROJECT}/content", json=body,
                             headers={**KEY, "Idempotency-Key": str(uuid.uuid4())})
            if r.status_code != 202:
                raise SystemExit(f"soak: filling got {r.status_code}: {r.text[:200]}")

    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        await asyncio.gather(*[one(c) for _ in range(clients)])
    print(f"soak: filled the org to its {MAX_CONTAINERS} containers in "
          f"{time.monotonic() - started:.1f} s", flush=True)


def slope_per_10000(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of RSS (KiB) against requests, in MiB per 10,000 requests."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return (sxy / sxx) * 10000 / 1024 if sxx else float("nan")


async def soak(url: str, watched: list[tuple[str, int]], seconds: float, window: float,
               clients: int, tolerance: float, label: str, warmup: float) -> int:
    """The load against `url`; `watched` names the processes sampled per window (the mock,
    and with --proxy the proxy too), each judged by the RSS slope."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        load = Load(client)
        start = time.monotonic()
        until = start + warmup + seconds
        tasks = [asyncio.create_task(load.worker(until)) for _ in range(clients)]
        await asyncio.sleep(warmup)  # the load runs; the windows start after it
        samples: dict[str, list[tuple[float, int, int]]] = {name: [] for name, _ in watched}
        last_t, last_n = time.monotonic(), load.done
        last_cpu = {name: cpu_seconds(pid) for name, pid in watched}
        rates: list[float] = []
        while time.monotonic() < until:
            await asyncio.sleep(min(window, max(0.0, until - time.monotonic())))
            now = time.monotonic()
            n = load.done
            rate = (n - last_n) / max(now - last_t, 1e-9)
            rates.append(rate)
            shown = []
            for name, pid in watched:
                rss, cpu = rss_kib(pid), cpu_seconds(pid)
                samples[name].append((now - start, n, rss))
                shown.append(f"{name} RSS {rss / 1024:7.1f} MiB, CPU "
                             f"{(cpu - last_cpu[name]) * 1000 / max(n - last_n, 1):5.2f} "
                             "ms/request")
                last_cpu[name] = cpu
            print(f"  [{label}] t={now - start:6.1f}s  requests={n:7d}  {rate:7.0f} req/s  "
                  f"{'  '.join(shown)}  5xx {load.server_errors}", flush=True)
            last_t, last_n = now, n
        await asyncio.gather(*tasks)
    ratio = rates[-1] / rates[0] if rates and rates[0] else float("nan")
    print(f"soak [{label}]: {load.done} requests in {seconds:.0f} s, {load.generated} "
          f"generates, {load.replays} keyed retries ({load.bad_replays} bad replays), "
          f"statuses {dict(sorted(load.statuses.items()))}")
    print(f"soak [{label}]: req/s first window {rates[0]:.0f}, last window {rates[-1]:.0f} "
          f"(last/first {ratio:.2f}; median {sorted(rates)[len(rates) // 2]:.0f})", flush=True)
    failed = []
    if load.server_errors:
        failed.append(f"{load.server_errors} answers were 5xx or cut")
    if load.bad_replays:
        failed.append(f"{load.bad_replays} keyed retries replayed other bytes")
    for name, points in samples.items():
        slope = slope_per_10000([(n, rss) for t, n, rss in points if t >= TTL])
        print(f"soak [{label}]: {name} RSS {points[0][2] / 1024:.1f} -> "
              f"{points[-1][2] / 1024:.1f} MiB; slope after the first TTL ({TTL} s) "
              f"{slope:.3f} MiB per 10,000 requests", flush=True)
        if not slope < 1.0:
            failed.append(f"the {name}'s RSS grew {slope:.2f} MiB per 10,000 requests after "
                          "the first TTL")
    if not abs(ratio - 1) <= tolerance:
        failed.append(f"the last window's throughput is {ratio:.2f}x the first's "
                      f"(allowed: within {tolerance:.0%})")
    for reason in failed:
        print(f"soak [{label}]: FAILED: {reason}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A Redis server of the soak's own on a free loopback port, stopped by its pid."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("soak: redis-server is not installed (make system-deps)")
        self.dir = tempfile.mkdtemp(prefix="layers-soak-redis-")
        port = _free_port()
        self.proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{port}/0"
        import redis

        for _ in range(200):
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("soak: redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_proxy(target: str, report: Path) -> RunningMock:
    """`layers-conformance proxy` in front of `target` on a free loopback port; its URL is read
    from its banner (`listening on http://...`), as tests/support/proxy.py does."""
    return start_process([sys.executable, "-m", "layers_kit.conformance", "proxy",
                          "--target", target, "--listen", "127.0.0.1:0",
                          "--idempotency-ttl", str(TTL), "--retention", str(TTL),
                          "--report", str(report)], what="the proxy")


def stop_proxy(proxy: RunningMock, report: Path, label: str) -> int:
    """SIGTERM (it writes its reports, then exits); 1 when it found server violations or
    could not judge (its exit status 1 or 2), else 0."""
    status = proxy.stop(signal.SIGTERM, timeout=60)
    said = [line.rstrip() for line in proxy.output
            if line.startswith("layers-conformance proxy stopped")]
    print(f"soak [{label}]: proxy exit status {status}: "
          f"{said[-1] if said else 'no summary printed'}", flush=True)
    try:
        data = json.loads(report.read_text())  # the counts are in the line above
        print(f"soak [{label}]: proxy report: {data['verdict']}; pending peak "
              f"{data['pendingPeak']}", flush=True)
        for why in data["couldNotJudge"]:
            print(f"soak [{label}]: proxy could not judge: {why}", flush=True)
    except (OSError, ValueError, KeyError) as e:
        print(f"soak [{label}]: proxy report not readable: {e}", file=sys.stderr, flush=True)
        status = status or 2
    if status != 0:
        print(f"soak [{label}]: FAILED: the proxy exited {status} (1: a server violation; "
              "2: it could not judge)", file=sys.stderr, flush=True)
        if os.environ.get("SOAK_SHOW_OUTPUT") is None:
            print("".join(proxy.output[-40:]), file=sys.stderr)
    return 1 if status != 0 else 0


def run_one(store: str, args: argparse.Namespace) -> int:
    tmp = tempfile.mkdtemp(prefix="layers-soak-")
    redis_server = None
    url = store
    if store == "sqlite":
        url = f"sqlite:///{tmp}/soak.db"
    elif store == "redis":
        redis_server = OwnRedis()
        url = redis_server.url
    label = store.split(":")[0] + ("+proxy" if args.proxy else "")
    try:
        mock = start_mock("--store", url, "--idempotency-ttl", str(TTL), "--retention", str(TTL),
                          "--reset", *args.mock_arg)
        proxy = None
        try:
            if args.fill:
                asyncio.run(fill(mock.url, args.clients))
            watched = [("mock", mock.pid)]
            if redis_server is not None:  # the store's memory is the mock's too
                watched.append(("redis-server", redis_server.proc.pid))
            target = mock.url
            if args.proxy:
                report = Path(tmp) / "proxy.json"
                proxy = start_proxy(mock.url, report)
                watched.append(("proxy", proxy.pid))
                target = proxy.url
            print(f"soak: {mock.url} (pid {mock.pid}), store {url}, default settings except "
                  f"--idempotency-ttl {TTL} --retention {TTL}, {args.clients} clients, "
                  f"{args.seconds:.0f} s" + (f", through the proxy {proxy.url} (pid "
                                             f"{proxy.pid})" if proxy else ""), flush=True)
            result = asyncio.run(soak(target, watched, args.seconds, args.window, args.clients,
                                      args.tolerance, label, args.warmup))
            if proxy is not None:
                result = max(result, stop_proxy(proxy, report, label))
            if store == "sqlite":
                files = sorted(Path(tmp).glob("soak.db*"))
                print(f"soak [{label}]: the database's files at the end: " + ", ".join(
                    f"{f.name} {f.stat().st_size / 2**20:.1f} MiB" for f in files), flush=True)
            return result
        finally:
            if proxy is not None:
                proxy.stop(signal.SIGKILL)  # only if an error came first: stop_proxy has run
                if os.environ.get("SOAK_SHOW_OUTPUT"):
                    print("".join(proxy.output))
            mock.stop()
            if os.environ.get("SOAK_SHOW_OUTPUT"):
                print("".join(mock.output))
    finally:
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=170, help="length of the measured load per "
                   "store, after the warm-up (default 170)")
    p.add_argument("--window", type=float, default=10, help="seconds per sample (default 10)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--store", default="memory",
                   help="memory, sqlite (a fresh file), redis (a Redis of its own), a store URL, "
                        "or all: memory, sqlite and redis one after the other (default memory)")
    p.add_argument("--warmup", type=float, default=10,
                   help="seconds of load before the first window (default 10: one job's "
                        "length at the default stage, so every window ends jobs)")
    p.add_argument("--tolerance", type=float, default=0.15,
                   help="how far the last window's req/s may be from the first's (default 0.15)")
    p.add_argument("--proxy", action="store_true",
                   help="send the load through the validating proxy (layers-conformance proxy) "
                        "in front of the mock, and judge its RSS too")
    p.add_argument("--no-fill", dest="fill", action="store_false",
                   help="do not fill the org to its bound of containers first")
    p.add_argument("--mock-arg", action="append", default=[],
                   help="one more argument for the mock (repeatable)")
    args = p.parse_args(argv)
    if not 1 <= args.seconds <= 900:
        p.error("--seconds must be from 1 to 900 (the soak is bounded)")
    if not 1 <= args.clients <= 64:
        p.error("--clients must be from 1 to 64")
    stores = ["memory", "sqlite", "redis"] if args.store == "all" else [args.store]
    results = {store: run_one(store, args) for store in stores}
    if len(stores) > 1:
        print("soak: " + ", ".join(f"{s} {'ok' if r == 0 else 'FAILED'}"
                                   for s, r in results.items()))
    return max(results.values())


if __name__ == "__main__":
    raise SystemExit(main())
