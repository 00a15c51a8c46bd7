"""``scanproof validate FILE``: check a scenario, contract or thresholds file without running."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import EXIT_PASS
from harness.judging.thresholds import load_thresholds

HELP = "check a scenario (or --contract / --thresholds) file; errors name the bad field"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--contract", action="store_true", help="FILE is a contract")
    kind.add_argument("--thresholds", action="store_true", help="FILE holds gate thresholds")


def run(args: argparse.Namespace) -> int:
    from harness.run.plan import make_plan
    from harness.run.scenario import load_scenario_file
    from harness.targets.contract import load_contract

    path: Path = args.file
    if args.contract:
        from harness.judging.checkers import CheckConfig, not_applicable

        contract = load_contract(path)
        print(f"{path}: a valid contract")
        # the live windows do not change which classes apply: any positive values do
        moot = not_applicable(CheckConfig.for_contract(contract, retention_s=1, scan_deadline_s=1))
        for name, why in moot.items():
            print(f"  {name}: not applicable ({why})")
    elif args.thresholds:
        limits = load_thresholds(path) or {}
        shown = ", ".join(f"{k}: {v.describe()}" for k, v in limits.items())
        print(f"{path}: valid thresholds {shown or '(none)'}")
    else:
        scenario = load_scenario_file(path)
        plan = make_plan(scenario, seed=0)
        print(
            f"{path}: a valid scenario {scenario.name!r}: {len(plan.scans)} scans by "
            f"{scenario.tenants} tenants, {len(plan.faults)} faults, "
            f"{scenario.duration:g} + {scenario.recovery:g} service seconds"
        )
    return EXIT_PASS
