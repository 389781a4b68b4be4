"""Benchmark: the mock side by side with Prism, under a bounded load on loopback.

Measures getJob and regenerateContent (a fresh Idempotency-Key on every request, over a pool of
containers so that R10 does not turn them into 409s) with wrk: req/s, p50, p99 and the server's
RSS, for the mock over memory (1 worker), SQLite (1 worker) and Redis (2 workers), and for
Prism 5.14.2 (bench/package.json; `npm ci --prefix bench`) mocking the same openapi.yaml in
static mode with its logging silenced. Each figure is printed next to its target (TARGETS),
then a profile of the mock's hot path, in process.

    python bench/run.py                 # the targets, 10 s per measurement
    python bench/run.py --seconds 5 --only memory,prism,profile
    python bench/run.py --only sqlite2,redis1,starlette   # more rows for the README's table
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from layers_kit.conformance.bundled import start_mock  # noqa: E402
from layers_kit.contract.spec import spec_path  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

KEY = {"X-Api-Key": "lp_test_full"}
PRJ = "prj_00000000-0000-4000-8000-000000000002"
PRISM_VERSION = "5.14.2"
PRISM_BIN = ROOT / "bench" / "node_modules" / ".bin" / "prism"
WARMUP_SECONDS = 2.0


@dataclass
class Measure:
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    requests: int
    statuses: str = ""  # non-2xx answers by status, and the last error body, from the script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(url: str, seconds: float, connections: int, script: str | None = None,
        env: dict | None = None, threads: int = 1) -> Measure:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency",
           "-H", "X-Api-Key: lp_test_full"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60,
                         env={**os.environ, **(env or {})}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    statuses = " ".join(line for line in out.splitlines()
                        if line.startswith(("statuses: ", "last error: ")) and line != "statuses: ")
    return Measure(rps, p50, p99, int(non.group(1)) if non else 0, total, statuses)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def prepare_mock(url: str, pool: int) -> tuple[str, Path]:
    """A finished job to read, and `pool` completed containers to regenerate."""
    with httpx.Client(base_url=url, headers=KEY, timeout=30) as c:
        ids: list[str] = []
        first = None
        for _ in range(pool // 5):
            r = c.post(f"/v1/projects/{PRJ}/content",
                       json={"variantCount": 5, "brief": {"topic": "Benchmark"}})
            r.raise_for_status()
            first = first or r.json()["jobId"]
            ids += r.json()["containerIds"]
        time.sleep(0.2)
        job = c.get(f"/v1/jobs/{first}")
        job.raise_for_status()
    path = Path(tempfile.mkstemp(prefix="containers-", suffix=".txt")[1])
    path.write_text("\n".join(ids) + "\n")
    return first, path


ROUNDS = 2


def _combine(parts: list[Measure]) -> Measure:
    """Rounds of one measurement as one: mean req/s and latencies, summed counts."""
    n = len(parts)
    return Measure(sum(m.rps for m in parts) / n, sum(m.p50_ms for m in parts) / n,
                   sum(m.p99_ms for m in parts) / n, sum(m.non2xx for m in parts),
                   sum(m.requests for m in parts), " ".join(m.statuses for m in parts).strip())


def run_targets(targets: list, seconds: float, connections: int, rows: list) -> None:
    """Start every target, then measure them in interleaved rounds, so that the load of a
    shared machine (which drifts over minutes) falls on all of them alike."""
    script = str(ROOT / "bench" / "regenerate.lua")
    started = []
    try:
        for name, start in targets:
            started.append((name, *start()))
            print(f"  started {name}", flush=True)
        results: dict[str, dict[str, list[Measure]]] = {n: {"get": [], "post": []}
                                                       for n, *_ in started}
        for _name, _pid, url, job_path, containers, _stop in started:
            # A warm-up of each request first (not counted): Prism's JIT and the mock's
            # first-request work start from the same place.
            wrk(url + job_path, WARMUP_SECONDS, connections)
            wrk(url, WARMUP_SECONDS, connections, script=script,
                env={"CONTAINERS": str(containers), "RUN": "warm"})
        for r in range(ROUNDS):
            for name, _pid, url, job_path, containers, _stop in started:
                results[name]["get"].append(wrk(url + job_path, seconds / ROUNDS, connections))
                results[name]["post"].append(wrk(
                    url, seconds / ROUNDS, connections, script=script,
                    env={"CONTAINERS": str(containers), "RUN": f"main{r}"}))
        for name, pid, *_ in started:
            get, post = _combine(results[name]["get"]), _combine(results[name]["post"])
            rss = rss_mb(pid)
            rows.append((name, get, post, rss))
            print(f"  {name:<28} getJob {get.rps:>8.0f} req/s   regenerate {post.rps:>8.0f} "
                  f"req/s   ({post.non2xx} non-2xx)  RSS {rss:.0f} MiB", flush=True)
            if post.non2xx:
                print(f"      {post.statuses}", flush=True)
    finally:
        for *_, stop in started:
            stop()


def mock_starter(store_url: str, workers: int, pool: int):
    def start():
        args = ["--stage-seconds", "0.002", "--store", store_url, "--workers", str(workers),
                "--reset"]
        mock = start_mock(*args)
        job_id, containers = prepare_mock(mock.url, pool)
        return mock.pid, mock.url, f"/v1/jobs/{job_id}", containers, mock.stop
    return start


STATIC_JOB = "/v1/jobs/job_01HXZ9G7KMV2QX8Y1S5RJW3B7T"


def process_starter(command, containers: Path):
    """A server started as `command(port)`, answering the same paths with static JSON."""
    def start():
        port = free_port()
        proc = subprocess.Popen(command(port), cwd=ROOT, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + STATIC_JOB)
        except RuntimeError:
            _kill(proc)  # never leave a server behind
            raise
        return proc.pid, url, STATIC_JOB, containers, lambda: _kill(proc)
    return start


def starlette_starter(workers: int, containers: Path):
    return process_starter(lambda port: [sys.executable, str(ROOT / "bench" / "baseline_app.py"),
                                         str(port), str(workers)], containers)


def prism_binary() -> Path | None:
    """Prism as pinned by bench/package-lock.json (`make bench` runs `npm ci --prefix bench`)."""
    if shutil.which("node") is None:
        return None
    if not PRISM_BIN.exists():
        print("  prism is not installed: run `npm ci --prefix bench` (make bench does)",
              flush=True)
        return None
    return PRISM_BIN


def prism_starter(binary: Path, containers: Path):
    """Prism in its default static mode (the spec's examples), its logging silenced: a logging
    Prism spends its time formatting log lines, which flatters any comparison."""
    return process_starter(lambda port: [str(binary), "mock", "-h", "127.0.0.1", "-p",
                                         str(port), "-v", "silent", str(spec_path())],
                           containers)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


async def _asgi(app, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request straight into the ASGI app: no client, no socket, so the profile is the
    server's alone."""
    raw = [(b"x-api-key", b"lp_test_full"), (b"host", b"bench")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body:
        raw += [(b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": raw,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent = False
    out: dict = {"status": 0, "body": b""}

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


def profile_hot_path(n: int = 1500) -> None:
    """cProfile of getJob and regenerate through the whole ASGI stack, in process."""
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx`")
    from layers_kit.mock.config import Config
    from layers_kit.mock.web.app import create_app

    app = create_app(Config(stage_seconds=0.0005))

    async def drive() -> None:
        _, body = await _asgi(app, "POST", f"/v1/projects/{PRJ}/content",
                                   b'{"variantCount":5,"brief":{"topic":"Profile"}}')
        accepted = json.loads(body)
        cids, job = accepted["containerIds"], accepted["locationUrl"]
        await asyncio.sleep(0.01)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for i in range(n):
            await _asgi(app, "GET", job)
            await _asgi(app, "POST", f"/v1/content/{cids[i % 5]}/regenerate",
                        b'{"brief":{"cta":"x"}}', {"Idempotency-Key": f"p-{i}"})
            if i % 5 == 4:  # let the five jobs end (stage 0.5 ms), off the profile
                profiler.disable()
                paused = time.perf_counter()
                await asyncio.sleep(0.003)
                started += time.perf_counter() - paused
                profiler.enable()
        profiler.disable()
        wall = time.perf_counter() - started
        stats = pstats.Stats(profiler)
        buckets: dict[str, float] = {}
        total = 0.0
        for (file, _, _), (_, _, tottime, _, _) in stats.stats.items():
            total += tottime
            key = _bucket(file)
            buckets[key] = buckets.get(key, 0.0) + tottime
        print(f"\nWhere the server's time goes ({2 * n} requests straight into the ASGI app, "
              f"{1e6 * wall / (2 * n):.0f} us/request under the profiler):")
        for key, t in sorted(buckets.items(), key=lambda kv: -kv[1])[:14]:
            print(f"  {key:<40} {100 * t / total:5.1f} %   {1e6 * t / (2 * n):7.0f} us/req")
        print("\nTop functions by own time:")
        stats.sort_stats("tottime").print_stats(18)

    asyncio.run(drive())


def _bucket(file: str) -> str:
    for marker, name in [("/mock/domain/", "mock.domain (rules)"), ("/mock/store/", "mock.store"),
                         ("/mock/web/", "mock.web (middleware, handlers)"),
                         ("connexion/validators", "connexion validators"),
                         ("connexion/", "connexion (routing, params, context)"),
                         ("jsonschema", "jsonschema (request validation)"),
                         ("starlette/", "starlette"), ("copy.py", "copy.deepcopy"),
                         ("ulid", "python-ulid"), ("json/", "json"), ("asyncio", "asyncio"),
                         ("werkzeug", "werkzeug"), ("referencing", "referencing (jsonschema)")]:
        if marker in file:
            return name
    return "other (stdlib, builtins)" if "site-packages" not in file else \
        file.split("site-packages/")[1].split("/")[0]


ALL = ("memory", "sqlite", "redis", "prism", "profile", "sqlite2", "redis1", "starlette")
DEFAULT = ("memory", "sqlite", "redis", "prism", "profile")
MEMORY, SQLITE, REDIS = "mock memory, 1 worker", "mock sqlite, 1 worker", "mock redis, 2 workers"
PRISM = f"prism {PRISM_VERSION} static, silent"
# (row, getJob x Prism, regenerate x Prism, p99 no worse than Prism's): the mock's targets.
TARGETS = ((MEMORY, 2.0, 2.0, True), (SQLITE, 1.5, 1.0, False), (REDIS, 1.0, 1.0, False))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10, help="per measurement (default 10)")
    p.add_argument("--connections", type=int, default=10, help="wrk -c (default 10, one thread)")
    p.add_argument("--pool", type=int, default=2000, help="containers for regenerate")
    p.add_argument("--only", help="comma list of: " + ", ".join(ALL) +
                                  " (default: " + ",".join(DEFAULT) + ")")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    only = set(args.only.split(",")) if args.only else set(DEFAULT)
    unknown = only - set(ALL)
    if unknown:
        print(f"bench: unknown --only {','.join(sorted(unknown))}", file=sys.stderr)
        return 2
    rows: list = []
    tmp = Path(tempfile.mkdtemp(prefix="layers-bench-"))
    pool_file = tmp / "containers.txt"
    pool_file.write_text("cnt_00000000-0000-4000-8000-000000000103\n")
    print(f"wrk -t1 -c{args.connections}, {args.seconds:g} s per figure in {ROUNDS} interleaved "
          f"rounds after a {WARMUP_SECONDS:g}-s warm-up, on 127.0.0.1 ({os.cpu_count()} cores "
          f"shared by load and servers)\n", flush=True)
    redis = None
    try:
        targets = []
        if "prism" in only:
            binary = prism_binary()
            if binary is None:
                print("  prism: node or bench/node_modules missing, skipped")
            else:
                targets.append((PRISM, prism_starter(binary, pool_file)))
        if "memory" in only:
            targets.append((MEMORY, mock_starter("memory", 1, args.pool)))
        if "sqlite" in only:
            targets.append((SQLITE, mock_starter(f"sqlite:///{tmp}/bench-1.db", 1, args.pool)))
        if "sqlite2" in only:
            targets.append(("mock sqlite, 2 workers",
                            mock_starter(f"sqlite:///{tmp}/bench-2.db", 2, args.pool)))
        if "redis" in only or "redis1" in only:
            redis = RedisServer()
            if "redis1" in only:
                targets.append(("mock redis, 1 worker", mock_starter(redis.db_url(6), 1,
                                                                      args.pool)))
            if "redis" in only:
                targets.append((REDIS, mock_starter(redis.db_url(7), 2, args.pool)))
        if "starlette" in only:
            for w in (1, 2):
                targets.append((f"bare starlette, {w} worker{'s' * (w > 1)}",
                                starlette_starter(w, pool_file)))
        run_targets(targets, args.seconds, args.connections, rows)
    finally:
        if redis is not None:
            redis.stop()
    if rows:
        print_table(rows)
        print_targets(rows)
    if "profile" in only:
        profile_hot_path()
    return 0


def print_table(rows: list) -> None:
    ref = {name: (g, p, rss) for name, g, p, rss in rows}
    prism = ref.get(PRISM)
    print("\n| target | getJob req/s | p50 ms | p99 ms | regenerate req/s | p50 ms | p99 ms |"
          " non-2xx | RSS MiB | vs Prism (get / post) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, g, post, rss in rows:
        vs_prism = f"{g.rps / prism[0].rps:.2f} / {post.rps / prism[1].rps:.2f}" if prism \
            else "-"
        print(f"| {name} | {g.rps:.0f} | {g.p50_ms:.2f} | {g.p99_ms:.2f} | {post.rps:.0f} | "
              f"{post.p50_ms:.2f} | {post.p99_ms:.2f} | {post.non2xx} | {rss:.0f} | "
              f"{vs_prism} |")
    print(json.dumps({name: {"get_rps": round(g.rps), "post_rps": round(p.rps),
                             "get_p99_ms": g.p99_ms, "post_p99_ms": p.p99_ms,
                             "rss_mib": round(rss)} for name, g, p, rss in rows}))


def print_targets(rows: list) -> None:
    """Each figure next to its target, met or short."""
    ref = {name: (g, p, rss) for name, g, p, rss in rows}
    if PRISM not in ref:
        print("\n(no Prism row: the targets are ratios to Prism, not checked)")
        return
    pg, pp, prss = ref[PRISM]
    print(f"\nAgainst the targets (Prism: getJob {pg.rps:.0f} req/s p99 {pg.p99_ms:.1f} ms, "
          f"regenerate {pp.rps:.0f} req/s p99 {pp.p99_ms:.1f} ms, RSS {prss:.0f} MiB):")
    for name, get_x, post_x, p99 in TARGETS:
        if name not in ref:
            continue
        g, post, rss = ref[name]
        for label, m, pm, want in (("getJob", g, pg, get_x), ("regenerate", post, pp, post_x)):
            ratio = m.rps / pm.rps
            line = (f"  {name:<24} {label:<11} {ratio:5.2f}x Prism (target >= {want:g}x)"
                    f"  {'met' if ratio >= want else 'SHORT'}")
            if p99:
                line += (f";  p99 {m.p99_ms:.1f} ms vs Prism {pm.p99_ms:.1f} ms "
                         f"{'met' if m.p99_ms <= pm.p99_ms else 'SHORT'}")
            if m.non2xx:
                line += f"  ({m.non2xx} non-2xx answers)"
            print(line)
        print(f"  {name:<24} RSS {rss:.0f} MiB (Prism {prss:.0f} MiB)")


if __name__ == "__main__":
    raise SystemExit(main())
