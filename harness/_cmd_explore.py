"""``scanproof explore``: hypothesis draws schedules of requests and faults; the checkers judge.

Every example starts from clean state on one cluster. On a finding, the
shrunk example is written as a replay file and the command that replays it is
printed. Exits **1** when an anomaly was found, **0** when every example
passed, 2 on bad usage, 3 when the infrastructure failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._cli_options import add_target_options
from harness.errors import EXIT_FAIL, EXIT_PASS

HELP = "explore with a hypothesis state machine; write the shrunk failure as a replay file"


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def configure(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser, redis_default="auto")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument(
        "--profile",
        default=None,
        help="hypothesis profile: ci (default; derandomized, no database), dev, thorough "
        "(also $SCANPROOF_HYPOTHESIS_PROFILE)",
    )
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="steps per example (default 8)")
    parser.add_argument(
        "--classes", default=None, help="comma-separated anomaly classes that count (default all)"
    )
    parser.add_argument(
        "--rules", default=None, help="comma-separated rules hypothesis may draw (default all)"
    )
    parser.add_argument(
        "--shrink-budget", type=float, default=10.0, help="seconds of hypothesis shrinking"
    )
    parser.add_argument("--time-scale", type=float, default=0.003)
    parser.add_argument("--contract", type=Path, default=None, help="contract .toml file")
    parser.add_argument("--retention-s", type=float, default=None)
    parser.add_argument("--scan-deadline-s", type=float, default=None)
    parser.add_argument(
        "--out", type=Path, default=None, help="default scanproof-runs/explore-<time>-<preset>"
    )


def run(args: argparse.Namespace) -> int:
    # hypothesis is imported here, when the verb runs, never by `scanproof --help`
    from harness._cli_options import parse_flags
    from harness._explore_steps import RULES
    from harness.contract import Contract, load_contract
    from harness.schema import ANOMALY_CLASSES
    from scenarios.stateful import ExploreConfig, explore

    config = ExploreConfig(
        preset=args.preset,
        flags=parse_flags(args.flag),
        app=args.app,
        workers=args.workers,
        tenants=args.tenants,
        redis=args.redis,
        time_scale=args.time_scale,
        profile=args.profile,
        max_examples=args.max_examples,
        step_count=args.steps,
        classes=_csv(args.classes) or ANOMALY_CLASSES,
        rules=_csv(args.rules) or RULES,
        shrink_budget_s=args.shrink_budget,
        out=args.out,
        contract=load_contract(args.contract) if args.contract else Contract(),
        retention_s=args.retention_s,
        scan_deadline_s=args.scan_deadline_s,
    )
    result = explore(config, progress=lambda line: print(line, flush=True))
    print(f"explored {result.examples} examples in {result.seconds:.1f} s ({result.out})")
    if result.replay is None or result.replay_path is None:
        print("no anomaly found")
        return EXIT_PASS
    found = ", ".join(f"{k} {v}" for k, v in result.found.items())
    print(f"found {found} in {len(result.replay.steps)} steps:")
    for i, step in enumerate(result.replay.steps):
        print(f"  {i + 1}. {step.describe()}")
    print(f"wrote {result.replay_path}; replay it with:\n  {result.command}")
    return EXIT_FAIL
