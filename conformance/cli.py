"""`layers-conformance run`: check a running implementation against the contract (D10).

Exit status: 0 no check failed (verdicts passed, not run, inconclusive, waived, error); 1 a
check failed (the target broke a rule); 2 usage error, or the target is unreachable or refuses
--api-key. Further subcommands (e.g. `proxy`) plug into the same parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from layers_kit.conformance import options
from layers_kit.conformance.failures import Unreachable
from layers_kit.conformance.proxy import command as proxy_command
from layers_kit.conformance.reporting import REPORT_SUFFIXES, SPEND_NOTE, Console, JUnit, Report
from layers_kit.conformance.runner import UsageError, run
from layers_kit.conformance.tls import TlsSetupError
from layers_kit.conformance.waivers import WaiverError
from layers_kit.conformance.waivers import load as load_waivers
from layers_kit.contract.version import version_line

# Keys may come from the environment, so that `ps` never shows them (options.py names them).
KEY_ENV = {"api": options.ENV["api_key"], "readonly": options.ENV["readonly_key"],
           "other": options.ENV["other_org_key"], "broke": options.ENV["broke_key"]}

VERDICTS_HELP = ("Verdicts: passed; failed (the target broke the rule: exit 1); not run (an "
                 "input is missing: the option that would run it is named); inconclusive (the "
                 "kit could not observe enough, or the target refused the setup for its own "
                 "reasons: credits, rate limits after retries, a key lacking a scope); waived "
                 "(--waive); error (the kit itself failed, never counted against the target). "
                 + SPEND_NOTE)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="layers-conformance",
                                description="Check an implementation of the Layers "
                                            "regenerate API against its contract.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version_line()}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the checks against a target", epilog=VERDICTS_HELP)
    options.add_arguments(r)  # the options model: target, inputs, how (every default there)
    out = r.add_argument_group("output")
    out.add_argument("--junit-xml", type=Path, help="write JUnit XML here")
    out.add_argument("--report", type=Path, action="append", default=[],
                     help="write a report: .md, .html or .json (versioned schema, README); "
                          "repeatable; Schemathesis' JUnit and HAR are kept in the folder of "
                          "the first")
    out.add_argument("-v", "--verbose", action="store_true", help="show expected/received live")
    proxy_command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "proxy":
        return proxy_command.run(args)
    given = options.given_args(args)
    # --mock brings its own keys: the environment's are read only for another target
    opts = options.resolve(given, None if given.get("mock") else os.environ)
    if opts.plan:
        from layers_kit.conformance.plan import plan_lines

        if opts.mock:  # the bundled mock's keys and ids, without starting it
            from layers_kit.conformance import bundled

            opts = options.resolve(given, door=bundled.door_values("http://127.0.0.1:<port>"))
        if not opts.base_url:
            print("layers-conformance: give --base-url (or --mock) to plan a run",
                  file=sys.stderr)
            return 2
        print("\n".join(plan_lines(opts.replace(api_key=opts.api_key or "(none)"))))
        return 0
    if not opts.mock and not (opts.base_url and opts.api_key):
        p.print_usage(sys.stderr)
        print("layers-conformance: give --base-url and --api-key, or --mock", file=sys.stderr)
        return 2
    handlers = [Console(verbose=args.verbose)]
    if args.junit_xml:
        handlers.append(JUnit(args.junit_xml))
    for report in args.report:
        if report.suffix.lower() not in REPORT_SUFFIXES:
            print("layers-conformance: --report must end in .md, .html or .json",
                  file=sys.stderr)
            return 2
        handlers.append(Report(report))
    try:
        waivers = load_waivers(opts.waive) if opts.waive else []
    except WaiverError as exc:
        print(f"layers-conformance: {exc}", file=sys.stderr)
        return 2
    kept = args.report[0] if args.report else args.junit_xml
    report_dir = kept.parent if kept else None
    mock = None
    try:
        if opts.mock:
            from layers_kit.conformance import bundled  # the one door to the mock

            mock = bundled.start_mock(*bundled.MOCK_ARGS)
            opts = options.resolve(given, door=bundled.door_values(mock.url))
        result = run(opts.target(), handlers=handlers, waivers=waivers, report_dir=report_dir,
                     **opts.run_kwargs())
        return result.exit_code
    except (UsageError, TlsSetupError) as exc:
        print(f"layers-conformance: {exc}", file=sys.stderr)
        return 2
    except Unreachable as exc:
        print(f"layers-conformance: the target is unreachable: {exc}", file=sys.stderr)
        return 2
    finally:
        if mock is not None:
            mock.stop()


if __name__ == "__main__":
    raise SystemExit(main())
