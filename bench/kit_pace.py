"""How long a default kit run takes against a rate-limited target with slow jobs, and whether a
sequential run (`--jobs 1`) reaches the same verdicts.

    .venv/bin/python bench/kit_pace.py                  # default, then --jobs 1
    .venv/bin/python bench/kit_pace.py --runs default   # one run only
    .venv/bin/python bench/kit_pace.py --timeout 900 --out /tmp/kit_pace
    .venv/bin/python bench/kit_pace.py --extra-keys 11  # 12 keys: --extra-api-key x 11
    .venv/bin/python bench/kit_pace.py --rate-limits off --runs default

Starts `layers-mock --stage-seconds 1 --rate-limits standard` on 127.0.0.1, port 0 (a fresh
mock for each run, so each starts with full buckets: per key and minute read 120, light_write
60, job_start 20), and runs the kit against it with the keys and ids the bundled fixtures
offer (what `--mock` passes: a project for the checks and a second one for the review-policy
checks) but the kit's default timings: no --mock overrides. `--extra-keys N` adds N keys of
the main org to the mock's fixtures and gives them to the kit. Each run is a
child process of this script, bounded by `--timeout` seconds, and stopped by its pid (its
process group) when it overruns; the mock is stopped by pid after each run.

Prints, per run: the wall time; the job-start requests (generateContent and
regenerateContent, any answer but 429: each takes a token of the key's job_start bucket) and
the 202 answers (replays apart) of each check and of the Schemathesis phase; the seconds slept on
Retry-After (checks and phase); the verdict of every check; then whether the runs' verdicts
per check are identical. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOB_START_OPS = ("generateContent", "regenerateContent")
MOCK_ARGS = ("--stage-seconds", "1")
RATE_LIMITS = "standard"  # the mock's tier for every key (--rate-limits off: none)


# ---- the child: one kit run, instrumented -----------------------------------------------------

def extra_keys(n: int) -> tuple[str, ...]:
    """The names of the `n` keys `pace_fixtures` adds (what a team gives --extra-api-key)."""
    return tuple(f"lp_test_pace_{i}" for i in range(1, n + 1))


def pace_fixtures(n: int, folder: Path) -> Path:
    """The bundled fixtures with `n` more keys of the main org, every scope each."""
    from tests.support.fixtures import write_fixtures

    return write_fixtures(folder / f"fixtures-{n}-extra-keys.yaml", extra_keys(n),
                          prefix="key_pace")


def child(url: str, jobs: int | None, out: Path, extra: int = 0) -> None:
    """Run the kit once against `url` (with `extra` more keys) and write what it did to
    `out` (JSON)."""
    from layers_kit.conformance import bundled, client, options, runner
    from layers_kit.conformance.reporting import Console

    per_check: dict[str, Counter] = defaultdict(Counter)
    per_key: Counter = Counter()  # the checks' job-start requests per key
    slept: Counter = Counter()
    real_send, real_request = client.Client._send, client.Client.request

    def send(self, method, path, validate, kw):  # every request sent, 429s included
        response = real_send(self, method, path, validate, kw)
        op = response.exchange.operation  # found once by the client
        if op in JOB_START_OPS:
            c = per_check[self.check or "(preflight)"]
            if response.status_code == 429:
                c["429"] += 1
            else:
                c["tokens"] += 1
                per_key[self._key or ""] += 1
            if response.status_code == 202:
                c["202"] += 1
                if response.headers.get("idempotent-replayed") == "true":
                    c["replayed"] += 1
        return response

    def request(self, method, path, **kw):
        before = self.waited
        try:
            return real_request(self, method, path, **kw)
        finally:
            slept[self.check or "(preflight)"] += self.waited - before

    client.Client._send = send
    client.Client.request = request

    door = {k: v for k, v in bundled.door_values(url).items()
            if k not in bundled.MOCK_OVERRIDES}
    given = {} if jobs is None else {"jobs": jobs}
    if extra:
        given["extra_api_keys"] = extra_keys(extra)
    opts = options.resolve(given, door=door)
    with open(out.with_suffix(".log"), "w", encoding="utf-8") as log:
        started = time.monotonic()
        result = runner.run(opts.target(), handlers=[Console(stream=log)],
                            **opts.run_kwargs())
        wall = time.monotonic() - started
    schema = result.schema
    phase: dict = {}
    if schema is not None:
        tokens = sum(n for op in JOB_START_OPS for k, n in schema.tally.get(op, {}).items()
                     if k not in ("429", "429 waited out"))
        phase = {"tokens": tokens, "202": schema.spend.job_starts,
                 "waitedSeconds": round((schema.facts or {}).get("waitedSeconds", 0.0), 1),
                 "tally": {op: dict(schema.tally.get(op, {})) for op in JOB_START_OPS},
                 "perKey": (schema.facts or {}).get("perKey", {}),
                 "reasons": schema.reasons}
    out.write_text(json.dumps({
        "wall": round(wall, 1), "jobs": opts.jobs,
        "verdicts": {f"{o.rule} {o.name}": o.status for o in result.outcomes},
        "messages": {f"{o.rule} {o.name}": o.message[:300] for o in result.outcomes
                     if o.status not in ("passed",)},
        "seconds": {f"{o.rule} {o.name}": o.seconds for o in result.outcomes},
        "checks": {k: dict(v) for k, v in per_check.items()},
        "slept": {k: round(v, 1) for k, v in slept.items() if v},
        "schemathesis": phase, "exit": result.exit_code, "keys": 1 + extra,
        "checksPerKey": dict(per_key)}, indent=1), encoding="utf-8")


# ---- the parent: a mock per run, the child bounded in time ------------------------------------

def one_run(name: str, jobs: int | None, timeout: float, out_dir: Path,
            extra: int = 0, rate_limits: str = RATE_LIMITS) -> dict | None:
    from layers_kit.mock.launcher import RunningMock, start_mock

    fixtures = ("--fixtures", str(pace_fixtures(extra, out_dir))) if extra else ()
    mock = start_mock(*MOCK_ARGS, "--rate-limits", rate_limits, *fixtures)
    out = out_dir / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", mock.url, "--out", str(out),
           "--extra-keys", str(extra)]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    print(f"[{name}] mock {mock.url} (pid {mock.pid}); kit pid ", end="", flush=True)
    proc = subprocess.Popen(cmd, start_new_session=True)
    print(proc.pid, flush=True)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"[{name}] over {timeout:g} s: stopped", flush=True)
        RunningMock(proc, "").stop()  # its process group: SIGTERM, then SIGKILL
    finally:
        mock.stop()
    if not out.exists():
        print(f"[{name}] no result (exit {proc.returncode}); see {out.with_suffix('.log')}")
        return None
    return json.loads(out.read_text(encoding="utf-8"))


def show(name: str, r: dict) -> None:
    checks = r["checks"]
    tokens = sum(c.get("tokens", 0) for c in checks.values())
    starts = sum(c.get("202", 0) for c in checks.values())
    phase = r["schemathesis"] or {}
    print(f"\n== {name} (--jobs {r['jobs'] or 'default'}, {r.get('keys', 1)} key(s)): "
          f"{r['wall']:.1f} s wall, "
          f"exit {r['exit']}")
    if r.get("keys", 1) > 1:
        print(f"job-start requests per key: checks {r.get('checksPerKey')}, Schemathesis "
              f"phase (its keys in order) {phase.get('perKey')}")
    replays = sum(c.get("replayed", 0) for c in checks.values())
    print(f"job-start requests (tokens) / 202 answers (of them replays): checks {tokens} / "
          f"{starts} ({replays}); Schemathesis phase {phase.get('tokens', 0)} / "
          f"{phase.get('202', 0)} (new jobs, from its HAR)")
    print(f"slept on Retry-After: checks {sum(r['slept'].values()):.1f} s (summed over "
          f"threads), Schemathesis {phase.get('waitedSeconds', 0):.1f} s")
    print(f"{'check':<44} {'verdict':<13} {'secs':>6} {'tokens':>6} {'202':>4} {'rep':>4} "
          f"{'429':>4} {'slept':>6}")
    names = {n.split(" ", 1)[1]: n for n in r["verdicts"]}
    for check in sorted(set(names) | set(checks) | set(r["slept"])):
        full = names.get(check, check)
        c = checks.get(check, {})
        print(f"{check[:44]:<44} {r['verdicts'].get(full, '-'):<13} "
              f"{r['seconds'].get(full, 0):>6.1f} {c.get('tokens', 0):>6} {c.get('202', 0):>4} "
              f"{c.get('replayed', 0):>4} {c.get('429', 0):>4} {r['slept'].get(check, 0):>6.1f}")
    for check, message in r["messages"].items():
        print(f"  {check}: {message.splitlines()[0] if message else ''}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="default,jobs1",
                   help="comma-separated: default, jobs1 (default both)")
    p.add_argument("--timeout", type=float, default=2400.0,
                   help="seconds each kit run may take before it is stopped (default 2400)")
    p.add_argument("--out", type=Path, default=None, help="folder for the runs' JSON and logs")
    p.add_argument("--compare", nargs=2, type=Path, metavar="JSON",
                   help="show two runs saved earlier (their .json) and compare their verdicts")
    p.add_argument("--extra-keys", type=int, default=0, metavar="N",
                   help="give the kit N more keys of the org (--extra-api-key), added to the "
                        "mock's fixtures (default 0)")
    p.add_argument("--rate-limits", choices=("standard", "off"), default=RATE_LIMITS,
                   help="the mock's rate-limit tier for every key (default standard)")
    p.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--jobs", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.jobs, Path(args.out), args.extra_keys)
        return 0
    results = {}
    if args.compare:
        for path in args.compare:
            results[str(path)] = json.loads(path.read_text(encoding="utf-8"))
            show(str(path), results[str(path)])
        out_dir = args.compare[0].parent
    else:
        out_dir = args.out or Path(tempfile.mkdtemp(prefix="kit-pace-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in args.runs.split(","):
            jobs = {"default": None, "jobs1": 1}[name]
            r = one_run(name, jobs, args.timeout, out_dir, args.extra_keys, args.rate_limits)
            if r is not None:
                results[name] = r
                show(name, r)
    if len(results) == 2:
        a, b = results.values()
        same = a["verdicts"] == b["verdicts"]
        print(f"\nverdicts identical: {'yes' if same else 'NO'}")
        for k in sorted(set(a["verdicts"]) | set(b["verdicts"])):
            if a["verdicts"].get(k) != b["verdicts"].get(k):
                print(f"  {k}: {a['verdicts'].get(k)} vs {b['verdicts'].get(k)}")
    print(f"(results and logs in {out_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
