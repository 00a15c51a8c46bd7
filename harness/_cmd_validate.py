"""``scanproof validate FILE``: check a scenario, contract or thresholds file without running."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._cli_options import load_thresholds
from harness.errors import EXIT_PASS

HELP = "check a scenario (or --contract / --thresholds) file; errors name the bad field"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--contract", action="store_true", help="FILE is a contract")
    kind.add_argument("--thresholds", action="store_true", help="FILE holds gate thresholds")


def run(args: argparse.Namespace) -> int:
    from harness.contract import load_contract
    from harness.plan import make_plan
    from harness.scenario import load_scenario_file

    path: Path = args.file
    if args.contract:
        load_contract(path)
        print(f"{path}: a valid contract")
    elif args.thresholds:
        print(f"{path}: valid thresholds {load_thresholds(path)}")
    else:
        scenario = load_scenario_file(path)
        plan = make_plan(scenario, seed=0)
        print(
            f"{path}: a valid scenario {scenario.name!r}: {len(plan.scans)} scans by "
            f"{scenario.tenants} tenants, {len(plan.faults)} faults, "
            f"{scenario.duration:g} + {scenario.recovery:g} service seconds"
        )
    return EXIT_PASS
