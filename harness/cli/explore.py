"""``scanproof explore``: hypothesis draws schedules of requests and faults; the checkers judge.

Every example starts from clean state on one cluster. On a finding, the
shrunk example is written as a replay file and the command that replays it is
printed. Exits **1** when an anomaly was found, **0** when every example
passed, 2 on bad usage, 3 when the infrastructure failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli._options import add_target_options, check_target_args, number, whole_number
from harness.errors import EXIT_FAIL, EXIT_PASS, UsageError

HELP = "explore with a hypothesis state machine; write the shrunk failure as a replay file"


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def configure(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser, redis_default="auto")
    parser.add_argument("--workers", type=whole_number("--workers"), default=4)
    parser.add_argument("--tenants", type=whole_number("--tenants"), default=2)
    parser.add_argument(
        "--profile",
        default=None,
        help="hypothesis profile: ci (default; derandomized, no database), dev, thorough "
        "(also $SCANPROOF_HYPOTHESIS_PROFILE)",
    )
    parser.add_argument("--max-examples", type=whole_number("--max-examples"), default=None)
    parser.add_argument(
        "--steps",
        type=whole_number("--steps", minimum=None),
        default=None,
        help="steps per example (default 8)",
    )
    parser.add_argument(
        "--classes", default=None, help="comma-separated anomaly classes that count (default all)"
    )
    parser.add_argument(
        "--rules", default=None, help="comma-separated rules hypothesis may draw (default all)"
    )
    parser.add_argument(
        "--shrink-budget",
        type=number("--shrink-budget"),
        default=10.0,
        help="seconds of hypothesis shrinking",
    )
    parser.add_argument(
        "--time-scale",
        type=number("--time-scale", unit=None),
        default=None,
        help="real seconds per service second: the reference runs on it (default 0.003); "
        "another app's clock (default: the contract's or meta's, else calibrated)",
    )
    parser.add_argument(
        "--budget",
        type=number("--budget"),
        default=None,
        help="seconds for the whole search, shrinking included; then it ends with what it has",
    )
    parser.add_argument(
        "--lanes",
        type=whole_number("--lanes"),
        default=2,
        help="clusters searching at once (default 2; 1..4): an example mostly waits on the "
        "service; a shrunk step is kept only when it fails on every lane",
    )
    parser.add_argument(
        "--no-seeds",
        dest="seeds",
        action="store_false",
        help="skip the seed schedules (one per common bug) run before the random search",
    )
    parser.add_argument("--contract", type=Path, default=None, help="contract .toml file")
    parser.add_argument("--retention-s", type=number("--retention-s"), default=None)
    parser.add_argument("--scan-deadline-s", type=number("--scan-deadline-s"), default=None)
    parser.add_argument(
        "--out", type=Path, default=None, help="default scanproof-runs/explore-<time>-<preset>"
    )


def check_local_redis(spec: str, verb: str) -> None:
    """``explore`` and ``replay`` flush Redis before every example: never a Redis you run."""
    from harness.cluster.redis import resolve_spec

    if resolve_spec(spec)[0] == "url":
        raise UsageError(
            f"--redis {spec}: {verb} flushes Redis before every example, so it never runs on "
            "a Redis you run; use --redis auto, embedded or server"
        )


def run(args: argparse.Namespace) -> int:
    from harness.run.runner import check_out_dir, print_progress

    flags = check_target_args(args)  # before anything starts: a bad value is exit 2
    check_local_redis(args.redis, "explore")
    if args.out is not None:
        check_out_dir(args.out, holds="examples", what="exploration")
    # hypothesis is imported here, when the verb runs, never by `scanproof --help`
    from harness.explore.steps import RULES
    from harness.history.schema import ANOMALY_CLASSES
    from harness.targets.contract import Contract, load_contract
    from scenarios.stateful import ExploreConfig, explore

    config = ExploreConfig(
        preset=args.preset,
        flags=flags,
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
        contract_file=str(args.contract or ""),
        retention_s=args.retention_s,
        scan_deadline_s=args.scan_deadline_s,
        budget_s=args.budget,
        lanes=args.lanes,
        seeds=args.seeds,
    )
    result = explore(config, progress=print_progress)
    timing = result.timing.describe() if result.timing else "?"
    ran = f"{result.seeds} seeds and {result.examples} examples"
    print(f"explored {ran} in {result.seconds:.1f} s ({result.out})")
    print(f"time base: {timing}")
    if result.replay is None or result.replay_path is None:
        print(result.summary())
        return EXIT_PASS
    found = ", ".join(f"{k} {v}" for k, v in result.found.items())
    print(f"found {found} in {len(result.replay.steps)} steps:")
    for i, step in enumerate(result.replay.steps):
        print(f"  {i + 1}. {step.describe()}")
    print(f"wrote {result.replay_path}; replay it with:\n  {result.command}")
    return EXIT_FAIL
