"""``scanproof report RUN_DIR``: re-render the report files of a judged run."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import EXIT_PASS, UsageError

HELP = "re-render report.md, report.html, junit.xml and plots of a run directory"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")


def run(args: argparse.Namespace) -> int:
    from harness.history.record import RUN_JSON, recover_killed
    from reports import render_run

    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run directory")
    if (args.run_dir / RUN_JSON).exists():
        recover_killed(args.run_dir)  # a SIGKILLed run says so, and leaves no temp dirs
    rendered = render_run(args.run_dir)  # the step summary: one section per run
    print(f"verdict {rendered.verdict.upper()} (as recorded in verdict.json)")
    for path in (rendered.markdown, rendered.html, rendered.junit, *rendered.plots):
        print(f"  {path}")
    for problem in rendered.problems:
        print(f"  problem: {problem}")

    return EXIT_PASS
