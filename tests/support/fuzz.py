"""`make fuzz`: a long Schemathesis run against a fresh mock on loopback, bounded in time.

    python -m tests.support.fuzz --examples 500 --seconds 900
"""

from __future__ import annotations

import argparse
import sys

from layers_kit.conformance.bundled import start_mock
from layers_kit.conformance.schema_phase import run_schemathesis


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--examples", type=int, default=500, help="examples per operation")
    p.add_argument("--seconds", type=float, default=900, help="stop after this long")
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    mock = start_mock("--stage-seconds", "0.05", "--validate-responses")
    try:
        result = run_schemathesis(mock.url, "lp_test_full", max_examples=args.examples,
                                  seed=args.seed, timeout=args.seconds)
    finally:
        mock.stop()
    print(result.summary)
    for failure in result.failures:
        print(failure, file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
