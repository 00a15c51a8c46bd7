"""``scanproof run``: run a chaos scenario and write a judged run directory.

Exits 0 when the run completed (whatever the verdict: use ``gate`` to fail a
build), 2 on bad usage, 3 when the infrastructure failed, 130 on Ctrl-C.

The last line says where the wall time went (``time: 24.1 s (startup 1.3 s, ...)``),
as ``run.json``'s ``phases`` records it, from this process's start to the written
reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli._options import add_run_options, check_target_args
from harness.errors import EXIT_PASS, EXIT_UNKNOWN

if TYPE_CHECKING:  # the runner pulls in pandas: import it only when a run starts
    from harness.history.record import PhaseClock
    from harness.judging.thresholds import Limit
    from harness.run.runner import RunOptions, RunResult
    from harness.run.scenario import Scenario

HELP = "run a chaos scenario against a multi-worker service and judge it"


def configure(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    add_json_option(parser)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: the verdict document on stdout, the summary table on stderr."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the verdict document (verdict.json plus run_dir) on stdout and the "
        "summary table on stderr",
    )


def resolve_scenario(value: str) -> Scenario:
    from harness.run.scenario import load_scenario_file
    from scenarios.catalogue import get_scenario

    if value.endswith(".toml") or "/" in value:
        return load_scenario_file(Path(value))
    return get_scenario(value)


def options_from_args(
    args: argparse.Namespace, thresholds: Mapping[str, int | Limit]
) -> RunOptions:
    from harness.run.runner import RunOptions
    from harness.targets.contract import Contract, load_contract

    flags = check_target_args(args)  # a bad preset, flag or time scale: exit 2, nothing made
    contract = load_contract(args.contract) if args.contract else Contract()
    return RunOptions(
        scenario=resolve_scenario(args.scenario),
        app=args.app,
        preset=args.preset,
        flags=flags,
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
        contract_file=args.contract,
        out=args.out,
        # decide() reads Limit values; RunOptions' annotation still says int
        thresholds=thresholds,
        allow_destructive=args.allow_destructive,
        allow_remote_faults=args.allow_remote_faults,
        driver=args.driver,
        users=args.users,
        spawn_rate=args.spawn_rate,
        calibrate_timeout_s=args.calibrate_timeout,
        cmd=args.cmd,
        ready_path=args.ready_path,
        targets=tuple(args.target),
        max_rps=args.max_rps,
        job_workers=args.job_workers,
        job_worker_count=args.job_worker_count,
        job_ready_log=args.job_ready_log,
        keep_alive=args.keep_alive,
    )


def execute(
    options: RunOptions,
    *,
    quiet: bool,
    as_json: bool = False,
    coverage: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run with progress on stderr (``main`` makes SIGTERM stop it like Ctrl-C). Holds the run to
    the ``coverage`` minimums, renders every report file, records the phases' times in
    run.json, then prints the summary (``as_json``: the verdict document on stdout) and
    the time line (on the summary's stream)."""
    from dataclasses import replace

    from harness.cli._summary import finish, gate_coverage
    from harness.history.record import format_phases
    from harness.run.runner import print_progress, record_phases, run_chaos

    clock = command_clock()
    result = run_chaos(options, progress=None if quiet else print_progress, clock=clock)
    result = replace(result, verdict=gate_coverage(result.run_dir, result.verdict, coverage))
    # The report files are rendered from run.json before rendering ends: they show the
    # phases up to judging; run.json and the time line below have rendering and the total.
    clock.enter("rendering")
    render_reports(result.run_dir)
    phases = record_phases(result.run_dir, clock)
    finish(result.verdict, result.run_dir, as_json=as_json)
    print(format_phases(phases), file=sys.stderr if as_json else sys.stdout)
    return result


def command_clock() -> PhaseClock:
    """The run's phase clock: started when this process started when it is the
    ``scanproof`` command (its ``startup`` phase is then imports, argument parsing and
    checks), else now (``run`` called from a longer-lived process: a test, a notebook)."""
    from harness.history.record import PhaseClock, process_started

    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    ours = os.path.basename(argv0) == "scanproof" or argv0.endswith(
        os.path.join("harness", "__main__.py")
    )
    return PhaseClock(process_started() if ours else None)


def render_reports(run_dir: Path) -> None:
    """Write every report file of ``run_dir`` (report.md, report.html, junit.xml, plots)
    from its verdict.json: what a run does, and what ``check`` does after re-judging. The
    step summary is written by the caller (once per run, see ``harness.cli._summary``)."""
    try:
        from reports import render_run
    except ImportError:
        return
    try:
        render_run(run_dir)  # also the step summary: one section per run, replaced
    except Exception as exc:  # a report that fails to render never changes the verdict
        print(f"scanproof: could not render the report: {exc}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    result = execute(options_from_args(args, {}), quiet=args.quiet, as_json=args.json)
    # run never gates on the verdict, but a run that could not measure its target's
    # time base tested nothing: say so in the exit code
    return EXIT_UNKNOWN if result.calibration_error else EXIT_PASS
