"""``scanproof check RUN_DIR``: re-judge a stored run (also one that was interrupted)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._cli_options import load_thresholds
from harness._cmd_gate import exit_code

HELP = "re-judge a stored run directory; exit 0 pass / 1 fail / 3 unknown"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--thresholds", type=Path, default=None, help="TOML of class = max unexcused count"
    )


def run(args: argparse.Namespace) -> int:
    from harness._summary import format_summary
    from harness.runner import judge_run_dir

    thresholds = load_thresholds(args.thresholds) if args.thresholds else None
    verdict = judge_run_dir(args.run_dir, thresholds=thresholds)
    print(format_summary(verdict, args.run_dir))
    return exit_code(verdict.verdict)
