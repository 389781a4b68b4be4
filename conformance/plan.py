"""`layers-conformance run --plan`: what a run would send, create and spend, sending nothing.

A team about to point the kit at a staging server reads this first: which checks would run
(and which not, with the option that would run them), which change the target's shared state
(the project's review policy, restored afterwards), whether the Schemathesis phase runs, and
an estimate of the containers, job starts, credits and scheduled posts the run would leave.
The estimate scales the figures measured against the bundled mock (a full default run; see
`SPEND_NOTE`) by the share of the business-rule checks that would run: it is an estimate, the
reports of a real run list the exact ids created.
"""

from __future__ import annotations

from typing import Any

from layers_kit.conformance.registry import NEEDS
from layers_kit.conformance.runner import phase_apart, select

# Measured against the bundled mock, a full default run (reporting.SPEND_NOTE).
FULL_RUN = {"containers": 36, "job starts": 44, "credits reserved": 5400,
            "scheduled posts (dated at least a year ahead)": 1, "review policy changes": 11}
SCHEMA_PHASE = {"containers": 25, "job starts": 20, "credits reserved": 3600,
                "scheduled posts (dated at least a year ahead)": 50}


def plan_lines(opts: Any) -> list[str]:
    """The plan of a run with these options (`options.Options`); sends nothing."""
    target = opts.target()
    checks = select(list(opts.only) or None)
    runs = [c for c in checks if all(target.has(n) for n in c.needs)]
    skipped = [c for c in checks if c not in runs]
    rules_only = bool(opts.only) and not {o.upper() for o in opts.only} & {
        "SCHEMA", "SCHEMATHESIS"}
    schema = opts.schemathesis and not rules_only
    lines = [f"Plan for {target.base_url} (nothing is sent). {target.tls.describe()}.", "",
             f"{len(runs)} check(s) would run:"]
    for c in runs:
        note = " [changes the project's review policy, then restores it]" if c.exclusive \
            else " [judges what the run saw; sends a few requests of its own]" if c.judge else ""
        lines.append(f"  {c.rule:<6} {c.name}{note}")
    if skipped:
        lines += ["", f"{len(skipped)} check(s) would not run:"]
        for c in skipped:
            missing = [NEEDS[n] for n in c.needs if not target.has(n)]
            lines.append(f"  {c.rule:<6} {c.name}: needs {' and '.join(missing)}")
    check_keys, phase_keys = target.key_shares(phase=phase_apart(target, schema))
    if len(target.keys) > 1:
        phase = (f", the Schemathesis phase {len(phase_keys)} (each request of a rate-limit "
                 "class goes with one of its keys whose bucket is open)"
                 if check_keys != phase_keys else "")
        lines += ["", f"Keys: the checks share {len(check_keys)} (--api-key first; each check "
                      f"keeps the one it starts with){phase}."]
    lines += ["", "Schemathesis phase: " + (
        f"runs ({'quick' if opts.quick else 'default'} profile"
        + (f", {opts.schemathesis_examples} examples per operation"
           if opts.schemathesis_examples else "") + ")" if schema else "does not run")]
    rule_checks = [c for c in checks if not c.judge]
    share = len([c for c in runs if not c.judge]) / max(1, len(rule_checks))
    estimate = {k: round(v * share) for k, v in FULL_RUN.items()}
    if schema:
        for k, v in SCHEMA_PHASE.items():
            estimate[k] = estimate.get(k, 0) + v
    lines += ["", "Estimated to create and spend on the target (measured against the bundled "
                  "mock, scaled to the checks that would run; the reports of a run list the "
                  "exact ids):"]
    lines += [f"  about {v} {k}" for k, v in estimate.items()]
    if not target.project_id:
        lines.append("  (without --project-id no container is created: checks reuse the "
                     "--container-id ones and run one at a time)")
    return lines
