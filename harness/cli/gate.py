"""``scanproof gate``: run like ``run``, then exit by the verdict (for CI).

Exit codes: 0 pass, 1 a class exceeded its threshold, 2 bad usage or config,
3 infrastructure failure (the verdict is unknown, never pass).

With ``--baseline RUN_DIR`` the exit code says instead whether the candidate
is significantly worse than that stored run in some class (one-sided
two-proportion test at ``--alpha``): 1 a class regressed, 0 none did, 3 no
regression but something could not be decided.

Thresholds (``--thresholds FILE``, else ``[tool.scanproof.gate]`` of ./pyproject.toml)
give each class a maximum count, rate or 95%-interval upper end
(:mod:`harness.judging.thresholds`); ``check`` reads them the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli._options import add_run_options, check_target_args, significance
from harness.cli.run import add_json_option, execute, options_from_args
from harness.errors import EXIT_FAIL, EXIT_PASS, EXIT_UNKNOWN

HELP = "run a scenario and exit 0 pass / 1 fail / 3 unknown (for CI)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=None,
        help="TOML of class = limit: a max count (3), { rate = 0.01 } or { ci95_upper = 0.05 } "
        "(default: [tool.scanproof.gate] of ./pyproject.toml, else 0 for every class)",
    )
    add_json_option(parser)
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="compare with this judged run instead of thresholds: exit 1 when a class's rate "
        "is significantly higher (run the same scenario and seed)",
    )
    parser.add_argument(
        "--alpha",
        type=significance("--alpha"),
        default=0.05,
        help="--baseline significance level (default 0.05)",
    )


def exit_code(verdict: str) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(verdict, EXIT_UNKNOWN)


def run(args: argparse.Namespace) -> int:
    from harness.judging.thresholds import load_coverage_minimums, load_thresholds

    check_target_args(args)
    thresholds = load_thresholds(args.thresholds) or {}
    coverage = load_coverage_minimums(args.thresholds)
    options = options_from_args(args, thresholds)
    if args.baseline is None:
        result = execute(options, quiet=args.quiet, as_json=args.json, coverage=coverage)
        return exit_code(result.verdict.verdict)
    from harness.evidence.across_runs import tally_runs
    from harness.evidence.baseline import compare, format_comparison

    baseline = tally_runs([args.baseline])  # read it first: a bad directory fails fast
    result = execute(options, quiet=args.quiet, as_json=args.json, coverage=coverage)
    comparison = compare(baseline, tally_runs([result.run_dir]), alpha=args.alpha)
    for warning in comparison.warnings:
        print(f"scanproof gate: warning: {warning}", file=sys.stderr)
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds the document only
    print(file=out)
    text = format_comparison(comparison, baseline=str(args.baseline), candidate=str(result.run_dir))
    print(text, file=out)
    if comparison.exit_code == EXIT_PASS and result.verdict.verdict == "unknown":
        return EXIT_UNKNOWN  # no regression found, but the candidate's own run decided nothing
    return comparison.exit_code
