"""``scanproof gate``: run like ``run``, then exit by the verdict (for CI).

Exit codes: 0 pass, 1 a class exceeded its threshold, 2 bad usage or config,
3 infrastructure failure (the verdict is unknown, never pass).

With ``--baseline RUN_DIR`` the exit code says instead whether the candidate
is significantly worse than that stored run in some class (one-sided
two-proportion test at ``--alpha``): 1 a class regressed, 0 none did, 3 no
regression but something could not be decided.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._cli_options import add_run_options, load_thresholds
from harness._cmd_run import execute, options_from_args
from harness.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNKNOWN

HELP = "run a scenario and exit 0 pass / 1 fail / 3 unknown (for CI)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=None,
        help="TOML of class = max unexcused count (default: [tool.scanproof.gate] of "
        "./pyproject.toml, else 0 for every class)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="compare with this judged run instead of thresholds: exit 1 when a class's rate "
        "is significantly higher (run the same scenario and seed)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="--baseline significance level (default 0.05)"
    )


def exit_code(verdict: str) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(verdict, EXIT_UNKNOWN)


def run(args: argparse.Namespace) -> int:
    thresholds = load_thresholds(args.thresholds)
    if args.baseline is None:
        result = execute(options_from_args(args, thresholds), quiet=args.quiet)
        return exit_code(result.verdict.verdict)
    from harness.baseline import compare, format_comparison
    from harness.tally import tally_runs

    baseline = tally_runs([args.baseline])  # read it first: a bad directory fails fast
    result = execute(options_from_args(args, thresholds), quiet=args.quiet)
    comparison = compare(baseline, tally_runs([result.run_dir]), alpha=args.alpha)
    print()
    print(format_comparison(comparison, baseline=str(args.baseline), candidate=str(result.run_dir)))
    return comparison.exit_code
