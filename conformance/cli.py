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

from layers_kit.conformance import bundled
from layers_kit.conformance.failures import Unreachable
from layers_kit.conformance.proxy import command as proxy_command
from layers_kit.conformance.reporting import REPORT_SUFFIXES, SPEND_NOTE, Console, JUnit, Report
from layers_kit.conformance.runner import UsageError, run
from layers_kit.conformance.target import Target
from layers_kit.conformance.waivers import WaiverError
from layers_kit.conformance.waivers import load as load_waivers
from layers_kit.mock.version import version

# Keys may come from the environment, so that `ps` never shows them.
KEY_ENV = {"api": "LAYERS_API_KEY", "readonly": "LAYERS_READONLY_KEY",
           "other": "LAYERS_OTHER_ORG_KEY", "broke": "LAYERS_BROKE_KEY"}
_KEY_ARGS = {"api": "api_key", "readonly": "readonly_key", "other": "other_org_key",
             "broke": "broke_key"}

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
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the checks against a target", epilog=VERDICTS_HELP)
    where = r.add_argument_group("target")
    where.add_argument("--base-url", help="the implementation's base URL")
    where.add_argument("--api-key",
                       help=f"a key with every scope of the API (or ${KEY_ENV['api']}, which "
                            "keeps it off the command line)")
    where.add_argument("--mock", action="store_true",
                       help="start the bundled mock on a free port and test it")
    unlock = r.add_argument_group("inputs that unlock more checks")
    unlock.add_argument("--project-id", help="a project the kit may create containers in")
    unlock.add_argument("--container-id", action="append", default=[],
                        help="an existing completed container (repeatable)")
    unlock.add_argument("--readonly-key",
                        help="a key without content:write (scopes, D8; needs content:read, "
                             f"or ${KEY_ENV['readonly']})")
    unlock.add_argument("--other-org-key",
                        help="a key of another org (tenancy, R12/D8; needs content:read "
                             f"content:write jobs:read jobs:cancel, or ${KEY_ENV['other']})")
    unlock.add_argument("--other-project-id", help="a project of that other org")
    unlock.add_argument("--broke-key",
                        help="a key of an org without credits (R12; needs content:write, or "
                             f"${KEY_ENV['broke']})")
    unlock.add_argument("--broke-container-id", help="a container of that org")
    unlock.add_argument("--moderation-text", help="brief text the safety check refuses (R12)")
    how = r.add_argument_group("how")
    how.add_argument("--quick", action="store_true",
                     help="a short profile for local use (small Schemathesis run)")
    how.add_argument("--only", action="append", help="only these rule ids or check names")
    how.add_argument("--no-schemathesis", action="store_true",
                     help="skip the Schemathesis phase (business rules only)")
    how.add_argument("--schemathesis-examples", type=int, help="examples per operation")
    how.add_argument("--seed", type=int, help="Schemathesis seed, for a reproducible run")
    how.add_argument("--jobs", type=int,
                     help="checks run at once with --project-id (default 4, 8 with --mock); "
                          "lower it for a target with tight rate limits")
    how.add_argument("--max-wait", type=float, default=120.0,
                     help="seconds one request may wait in all on 429/503 Retry-After before "
                          "its check is inconclusive (default 120)")
    how.add_argument("--waive", type=Path, metavar="FILE",
                     help="YAML or JSON list of {id: rule or check, reason, expires?}: those "
                          "checks are reported waived")
    how.add_argument("--exclude-check", action="append", default=[], metavar="NAME",
                     help="a Schemathesis check to leave out, e.g. negative_data_rejection "
                          "(repeatable)")
    how.add_argument("--job-timeout", type=float, default=300.0,
                     help="seconds to wait for a job to end (default 300)")
    how.add_argument("--poll-interval", type=float, default=0.5,
                     help="first polling delay in seconds; grows x1.3 up to 10 s")
    out = r.add_argument_group("output")
    out.add_argument("--junit-xml", type=Path, help="write JUnit XML here")
    out.add_argument("--report", type=Path, action="append", default=[],
                     help="write a report: .md, .html or .json (versioned schema, README); "
                          "repeatable; Schemathesis' JUnit and HAR are kept in the folder of "
                          "the first")
    out.add_argument("-v", "--verbose", action="store_true", help="show expected/received live")
    proxy_command.add_parser(sub)
    return p


def _target(args: argparse.Namespace, base_url: str) -> Target:
    return Target(base_url=base_url, api_key=args.api_key, readonly_key=args.readonly_key,
                  other_org_key=args.other_org_key, other_project_id=args.other_project_id,
                  broke_key=args.broke_key, broke_container_id=args.broke_container_id,
                  moderation_text=args.moderation_text, project_id=args.project_id,
                  container_ids=tuple(args.container_id), job_timeout=args.job_timeout,
                  poll_interval=args.poll_interval, max_wait=args.max_wait)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "run" and not args.mock:  # --mock brings its own keys
        for role, attr in _KEY_ARGS.items():
            if getattr(args, attr) is None:
                setattr(args, attr, os.environ.get(KEY_ENV[role]))
    if args.command == "proxy":
        return proxy_command.run(args)
    if not args.mock and not (args.base_url and args.api_key):
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
        waivers = load_waivers(args.waive) if args.waive else []
    except WaiverError as exc:
        print(f"layers-conformance: {exc}", file=sys.stderr)
        return 2
    kept = args.report[0] if args.report else args.junit_xml
    report_dir = kept.parent if kept else None
    mock = None
    try:
        if args.mock:
            mock = bundled.start_mock(*bundled.MOCK_ARGS)
            given = {k: v for k, v in vars(_target(args, mock.url)).items()
                     if v and k not in ("base_url", "job_timeout", "poll_interval")}
            given["max_wait"] = args.max_wait
            target = bundled.target_for(mock.url, **given)
        else:
            target = _target(args, args.base_url)
        result = run(target, handlers=handlers, only=args.only,
                     profile="quick" if args.quick else "default",
                     schemathesis=not args.no_schemathesis,
                     schemathesis_examples=args.schemathesis_examples, seed=args.seed,
                     jobs=args.jobs or (8 if args.mock else None), waivers=waivers,
                     exclude_checks=args.exclude_check, report_dir=report_dir)
        return result.exit_code
    except UsageError as exc:
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
