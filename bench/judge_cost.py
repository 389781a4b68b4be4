"""What the validating proxy's judge costs per exchange, in process. Not part of the suite.

The proxy's judge is one process; when its CPU per exchange is more than the forwarding side's,
a busy proxy forwards faster than it judges and exchanges go unjudged (exit 2 past
`--max-unjudged`). This measures that cost without the proxy around it, so a change to the
judge is seen on its own:

1. starts the bundled mock on a free loopback port (stopped by its pid at the end) and sends it
   the soak's mixed load (bench/soak.py's `Load`: generates, keyed retries, regenerates,
   schedules and reads) for `--seconds`, recording every exchange as the proxy would;
2. judges the recorded exchanges `--rounds` times with a fresh judge each round (the arrival
   and the finished exchange, as the proxy hands them over), and prints the CPU per exchange
   of each round and the best;
3. says how many findings the judge made (a correct mock gives none: a change that makes the
   judge faster must not make it see differently).

    .venv/bin/python bench/judge_cost.py [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import Load

from layers_kit.conformance.proxy.exchange import Exchange
from layers_kit.conformance.proxy.judge import Judging
from layers_kit.mock.launcher import start_mock


async def record(url: str, seconds: float, clients: int) -> list[Exchange]:
    """The soak's load against `url`, each round trip kept as an Exchange."""
    exchanges: list[Exchange] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        req = response.request
        exchanges.append(Exchange(
            method=req.method, url=str(req.url), path=req.url.path,
            request_headers=list(req.headers.items()), request_body=req.content or None,
            started=time.monotonic(), status=response.status_code,
            response_headers=list(response.headers.items()),
            response_body=response.content or None, ended=time.monotonic()))

    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 event_hooks={"response": [keep]}) as client:
        load = Load(client)
        until = time.monotonic() + seconds
        await asyncio.gather(*[load.worker(until) for _ in range(clients)])
    return exchanges


def judge_all(url: str, exchanges: list[Exchange]) -> tuple[float, int]:
    """CPU seconds to judge every exchange with a fresh judge, and the findings made."""
    judging = Judging(url)
    findings = 0
    started = time.process_time()
    for ex in exchanges:
        judging.arrived(ex)
        verdict = judging.judge(ex)
        findings += len(verdict.findings)
    return time.process_time() - started, findings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10, help="seconds of recorded load")
    p.add_argument("--rounds", type=int, default=3, help="judging rounds (the best is kept)")
    p.add_argument("--clients", type=int, default=4)
    args = p.parse_args()
    mock = start_mock("--idempotency-ttl", "60", "--retention", "60")
    try:
        exchanges = asyncio.run(record(mock.url, args.seconds, args.clients))
    finally:
        mock.stop()
    print(f"judge_cost: recorded {len(exchanges)} exchanges of the soak's load")
    best = float("inf")
    for i in range(args.rounds):
        cpu, findings = judge_all(mock.url, exchanges)
        per = cpu / len(exchanges) * 1000
        best = min(best, per)
        print(f"  round {i + 1}: {per:.3f} ms of CPU per exchange, {findings} findings")
    print(f"judge_cost: best {best:.3f} ms of CPU per exchange")


if __name__ == "__main__":
    main()
