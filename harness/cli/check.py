"""``scanproof check RUN_DIR``: re-judge a stored run (also one that was interrupted).

A run that did not finish (interrupted, crashed, killed, or still marked running
by a process that is gone, which is then marked killed and its temporary
directories removed) is judged on what it recorded and is unknown (exit 3) unless
that already fails a class (exit 1); ``--partial`` judges it as if complete.

Thresholds are read as ``gate`` reads them: ``--thresholds FILE``, else
``[tool.scanproof.gate]`` of ./pyproject.toml, else the ones the run recorded in
run.json. Re-judging rewrites verdict.json and then re-renders every report file
(report.md, report.html, junit.xml, plots) with the function the run itself uses,
so no file disagrees with the new verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.gate import exit_code
from harness.cli.run import add_json_option

HELP = "re-judge a stored run directory and re-render its reports; exit 0 pass / 1 fail / 3 unknown"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=None,
        help="TOML of class = limit: a max count (3), { rate = 0.01 } or { ci95_upper = 0.05 } "
        "(default: [tool.scanproof.gate] of ./pyproject.toml, else what the run recorded)",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="judge a run that did not finish (interrupted, crashed, killed) as if it were "
        "complete; without it such a run is unknown (exit 3) unless it already fails",
    )
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    from harness.cli._summary import finish, gate_coverage
    from harness.cli.run import render_reports
    from harness.judging.run_dir import judge_run_dir
    from harness.judging.thresholds import load_coverage_minimums, load_thresholds

    thresholds = load_thresholds(args.thresholds)
    coverage = load_coverage_minimums(args.thresholds)
    verdict = judge_run_dir(
        args.run_dir,
        # decide() reads Limit values; judge_run_dir's annotation still says int
        thresholds=thresholds,
        partial=args.partial,
    )
    verdict = gate_coverage(args.run_dir, verdict, coverage)
    render_reports(args.run_dir)
    finish(verdict, args.run_dir, as_json=args.json)
    return exit_code(verdict.verdict)
