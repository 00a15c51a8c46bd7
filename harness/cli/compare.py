"""``scanproof compare BASE_DIR CANDIDATE_DIR``: is the candidate worse than the baseline?

Nothing runs: both sides are judged run directories (``--base``/``--candidate``
add more directories to a side, e.g. one per seed; each side is summed). Per
class a one-sided two-proportion z-test; prints both rates with their 95%
intervals, the p-value and the verdict, then which classes regressed and
which improved.

Exit codes: 0 no class regressed; 1 some class is significantly worse; 2 bad
usage; 3 no regression, but a checker crashed or a run was partial, or a side
has no data at all (refused in one line). When the two sides ran a different
app, contract, scenario or seed, each difference is also a warning on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli._options import significance

HELP = "compare two judged runs class by class (two-proportion test); exit 1 on a regression"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, metavar="BASE_DIR")
    parser.add_argument("candidate", type=Path, metavar="CANDIDATE_DIR")
    parser.add_argument(
        "--base", type=Path, action="append", default=[], help="more baseline run directories"
    )
    parser.add_argument(
        "--candidate",
        dest="more_candidates",
        type=Path,
        action="append",
        default=[],
        help="more candidate run directories",
    )
    parser.add_argument(
        "--alpha", type=significance("--alpha"), default=0.05, help="significance (default 0.05)"
    )


def run(args: argparse.Namespace) -> int:
    from harness.evidence.baseline import compare_runs, format_comparison

    base = [args.baseline, *args.base]
    cand = [args.candidate, *args.more_candidates]
    comparison = compare_runs(base, cand, alpha=args.alpha)
    for warning in comparison.warnings:
        print(f"scanproof compare: warning: {warning}", file=sys.stderr)
    print(
        format_comparison(
            comparison,
            baseline=", ".join(map(str, base)),
            candidate=", ".join(map(str, cand)),
        )
    )
    return comparison.exit_code
