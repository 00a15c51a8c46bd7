"""``scanproof run``: run a chaos scenario and write a judged run directory.

Exits 0 when the run completed (whatever the verdict: use ``gate`` to fail a
build), 2 on bad usage, 3 when the infrastructure failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from harness._cli_options import add_run_options, parse_flags
from harness.errors import EXIT_PASS

if TYPE_CHECKING:  # the runner pulls in pandas: import it only when a run starts
    from harness.runner import RunOptions, RunResult
    from harness.scenario import Scenario

HELP = "run a chaos scenario against a multi-worker service and judge it"


def configure(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)


def resolve_scenario(value: str) -> Scenario:
    from harness.scenario import load_scenario_file
    from scenarios.catalogue import get_scenario

    if value.endswith(".toml") or "/" in value:
        return load_scenario_file(Path(value))
    return get_scenario(value)


def options_from_args(args: argparse.Namespace, thresholds: dict[str, int]) -> RunOptions:
    from harness.contract import Contract, load_contract
    from harness.runner import RunOptions

    contract = load_contract(args.contract) if args.contract else Contract()
    return RunOptions(
        scenario=resolve_scenario(args.scenario),
        app=args.app,
        preset=args.preset,
        flags=parse_flags(args.flag),
        seed=args.seed,
        workers=args.workers,
        router=args.router,
        redis=args.redis,
        duration_s=args.duration,
        tenants=args.tenants,
        retention_s=args.retention_s,
        scan_deadline_s=args.scan_deadline_s,
        time_scale=args.time_scale,
        contract=contract,
        out=args.out,
        thresholds=thresholds,
        allow_destructive=args.allow_destructive,
        allow_remote_faults=args.allow_remote_faults,
        driver=args.driver,
        users=args.users,
        spawn_rate=args.spawn_rate,
    )


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


def execute(options: RunOptions, *, quiet: bool) -> RunResult:
    """Run with progress on stderr; SIGTERM stops the run like Ctrl-C."""
    from harness._summary import format_summary
    from harness.runner import print_progress, run_chaos

    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        result = run_chaos(options, progress=None if quiet else print_progress)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _render(result)
    print(format_summary(result.verdict, result.run_dir))
    return result


def _render(result: RunResult) -> None:
    try:
        from reports import render_run
    except ImportError:
        return
    try:
        render_run(result.run_dir)
    except Exception as exc:  # a report that fails to render never changes the verdict
        print(f"scanproof: could not render the report: {exc}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    execute(options_from_args(args, {}), quiet=args.quiet)
    return EXIT_PASS
