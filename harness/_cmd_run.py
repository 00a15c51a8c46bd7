"""``scanproof run``: run a chaos scenario against a multi-worker service.

Until the chaos-run issue lands this verb only describes what it will do.
"""

from __future__ import annotations

import argparse

HELP = "run a chaos scenario against a multi-worker service (not yet implemented)"


def configure(parser: argparse.ArgumentParser) -> None:
    del parser  # options arrive with the chaos-run issue


def run(args: argparse.Namespace) -> int:
    del args
    print(
        "scanproof run is not implemented yet. When it lands it will start the reference "
        "scan service as 4 worker processes behind a round-robin router with an embedded "
        "Redis, drive the 'mixed' scenario on the 'claimed-fix' preset while injecting "
        "faults, and write a run directory with verdict.json and report.md."
    )
    return 0
