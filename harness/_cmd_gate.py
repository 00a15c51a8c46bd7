"""``scanproof gate``: run like ``run``, then exit by the verdict (for CI).

Exit codes: 0 pass, 1 a class exceeded its threshold, 2 bad usage or config,
3 infrastructure failure (the verdict is unknown, never pass).
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


def exit_code(verdict: str) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(verdict, EXIT_UNKNOWN)


def run(args: argparse.Namespace) -> int:
    thresholds = load_thresholds(args.thresholds)
    result = execute(options_from_args(args, thresholds), quiet=args.quiet)
    return exit_code(result.verdict.verdict)
