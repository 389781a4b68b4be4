"""`make soak`: a bounded soak of the real mock on loopback. Not part of the suite.

Starts `layers-mock` (memory store by default) with short retention and idempotency TTL, then
runs mixed operations from a few concurrent clients for `--seconds` (default 150): generates
with an Idempotency-Key, regenerates of recent containers, reads of jobs, containers, assets and
review policies, and 404s. Every `--window` seconds it samples the requests done and the
server's RSS (its process group, from /proc). At the end it prints req/s in the first and last
windows and the RSS slope per 1,000 requests (least squares over the samples after the first
third, once caches and pools have warmed), and exits 1 if throughput fell by more than half.

What stays is by design: each generate keeps its containers and their current assets for good
(README, "Stores and workers"); the report prints that count beside the slope so the two can
be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from pathlib import Path

import httpx

from layers_kit.mock.launcher import start_mock

KEY = {"X-Api-Key": "lp_test_full"}
PROJECT = "prj_00000000-0000-4000-8000-000000000002"
SEED = ["cnt_00000000-0000-4000-8000-000000000103"]


def rss_kib(pid: int) -> int:
    """RSS of the process and its children (workers), KiB."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Load:
    def __init__(self, client: httpx.AsyncClient, generate_share: float) -> None:
        self.client = client
        self.generate_share = generate_share
        self.containers: list[str] = list(SEED)
        self.jobs: list[str] = []
        self.assets: list[tuple[str, str]] = []
        self.done = 0
        self.generated = 0
        self.statuses: dict[int, int] = {}

    def _keep(self, items: list, item, limit: int = 500) -> None:
        items.append(item)
        if len(items) > limit:
            del items[: len(items) - limit]

    async def one(self) -> None:
        roll = random.random()
        c = self.client
        if roll < self.generate_share:
            r = await c.post(f"/v1/projects/{PROJECT}/content",
                             json={"brief": {"topic": "Soak"}, "variantCount": 1},
                             headers={**KEY, "Idempotency-Key": str(uuid.uuid4())})
            if r.status_code == 202:
                self.generated += 1
                self._keep(self.containers, r.json()["containerId"])
                self._keep(self.jobs, r.json()["jobId"])
        elif roll < 0.30:
            r = await c.post(f"/v1/content/{random.choice(self.containers)}/regenerate",
                             json={"brief": {"angle": "again"}},
                             headers={**KEY, "Idempotency-Key": str(uuid.uuid4())})
            if r.status_code == 202:
                self._keep(self.jobs, r.json()["jobId"])
        elif roll < 0.50 and self.jobs:
            r = await c.get(f"/v1/jobs/{random.choice(self.jobs)}", headers=KEY)
        elif roll < 0.70:
            cid = random.choice(self.containers)
            r = await c.get(f"/v1/content/{cid}", headers=KEY)
            if r.status_code == 200:
                for a in r.json()["assets"][:1]:
                    self._keep(self.assets, (cid, a["assetId"]))
        elif roll < 0.80 and self.assets:
            cid, aid = random.choice(self.assets)
            r = await c.get(f"/v1/content/{cid}/assets/{aid}", headers=KEY)
        elif roll < 0.92:
            r = await c.get(f"/v1/projects/{PROJECT}/content-review-policy", headers=KEY)
        else:
            r = await c.get(f"/v1/content/cnt_{uuid.uuid4()}", headers=KEY)
        self.done += 1
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1

    async def worker(self, until: float) -> None:
        while time.monotonic() < until:
            await self.one()


def slope_per_1000(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of RSS (KiB) against requests, in MiB per 1,000 requests."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return (sxy / sxx) * 1000 / 1024 if sxx else float("nan")


async def soak(url: str, pid: int, seconds: float, window: float, clients: int,
               generate_share: float) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        load = Load(client, generate_share)
        start = time.monotonic()
        until = start + seconds
        tasks = [asyncio.create_task(load.worker(until)) for _ in range(clients)]
        samples: list[tuple[float, int, int]] = []  # (t, requests, rss KiB)
        last_t, last_n = start, 0
        rates: list[float] = []
        while time.monotonic() < until:
            await asyncio.sleep(min(window, max(0.0, until - time.monotonic())))
            now = time.monotonic()
            n, rss = load.done, rss_kib(pid)
            rate = (n - last_n) / (now - last_t)
            rates.append(rate)
            samples.append((now - start, n, rss))
            print(f"  t={now - start:6.1f}s  requests={n:7d}  {rate:7.0f} req/s  "
                  f"RSS {rss / 1024:7.1f} MiB", flush=True)
            last_t, last_n = now, n
        await asyncio.gather(*tasks)
    tail = [(n, rss) for _, n, rss in samples[len(samples) // 3:]]
    slope = slope_per_1000(tail)
    print(f"soak: {load.done} requests in {seconds:.0f} s, {load.generated} generates "
          f"(containers kept by design), statuses {dict(sorted(load.statuses.items()))}")
    print(f"soak: req/s first window {rates[0]:.0f}, last window {rates[-1]:.0f}; "
          f"RSS {samples[0][2] / 1024:.1f} -> {samples[-1][2] / 1024:.1f} MiB; "
          f"slope {slope:.3f} MiB per 1,000 requests (after the first third)")
    if 500 in load.statuses:
        print("soak: FAILED: the mock answered 500", file=sys.stderr)
        return 1
    if rates[-1] < rates[0] / 2:
        print("soak: FAILED: throughput fell by more than half", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=150, help="length of the load (default 150)")
    p.add_argument("--window", type=float, default=10, help="seconds per sample (default 10)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--store", default="memory", help="the mock's --store (default memory)")
    p.add_argument("--retention", default="20", help="the mock's --retention (default 20 s)")
    p.add_argument("--idempotency-ttl", default="20", help="the mock's TTL (default 20 s)")
    p.add_argument("--generate-share", type=float, default=0.05,
                   help="share of requests that are generates (default 0.05)")
    args = p.parse_args(argv)
    if not 1 <= args.seconds <= 600:
        p.error("--seconds must be from 1 to 600 (the soak is bounded)")
    mock = start_mock("--store", args.store, "--stage-seconds", "0.2",
                      "--retention", args.retention, "--idempotency-ttl", args.idempotency_ttl)
    print(f"soak: {mock.url} (pid {mock.pid}), store {args.store}, retention "
          f"{args.retention} s, idempotency TTL {args.idempotency_ttl} s, {args.clients} "
          f"clients, {args.seconds:.0f} s", flush=True)
    try:
        return asyncio.run(soak(mock.url, mock.pid, args.seconds, args.window, args.clients,
                                args.generate_share))
    finally:
        mock.stop()
        if os.environ.get("SOAK_SHOW_OUTPUT"):
            print(mock.output if isinstance(mock.output, str) else "".join(mock.output))


if __name__ == "__main__":
    raise SystemExit(main())
