"""End-to-end wall time of ``scanproof run`` (no options), and where it goes.

Runs the command ``--runs`` times, one after the other, each in a fresh temporary
working directory (so ``scanproof-runs/`` starts empty), times it from outside
(fork to exit, like ``time scanproof run``) and reads the breakdown the run
recorded in ``run.json`` (``phases``). Prints a machine line, the command, one
row per run and the median of each column; ``--json PATH`` writes the same.
The target of issue 14 is a median total <= 30 s on the 2-core machine.

Usage::

    python benchmarks/bench_e2e.py --runs 3 --json e2e.json
    python benchmarks/bench_e2e.py --runs 1 -- --duration 2   # a quick check: extra args
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_line

from harness.history.record import PHASES, TOTAL

COLUMNS = (*(name for name, _ in PHASES), TOTAL, "outside", "exit")
TARGET_S = 30.0


def one_run(command: list[str]) -> dict[str, Any]:
    """Run ``command`` in a fresh directory; its phases, the outside wall time, exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    try:
        began = time.monotonic()
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
        outside = time.monotonic() - began
        records = sorted(workdir.glob("scanproof-runs/*/run.json"))
        phases: dict[str, Any] = {}
        if records:
            phases = dict(json.loads(records[-1].read_text()).get("phases") or {})
        if done.returncode != 0 or not phases:
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
        return {**phases, "outside": round(outside, 3), "exit": done.returncode}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("extra", nargs="*", help="arguments after -- go to scanproof run")
    args = parser.parse_args()
    scanproof = shutil.which("scanproof")
    command = [scanproof, "run"] if scanproof else [sys.executable, "-m", "harness", "run"]
    command += args.extra
    print(machine_line())
    print("command:", " ".join(command), f"(x{args.runs}, each in a fresh temp dir)")
    shown = [c for c in COLUMNS if c != "calibration"]
    print(" ".join(f"{c:>13}" for c in ("run", *shown)), flush=True)
    rows = []
    for i in range(args.runs):
        row = one_run(command)
        rows.append(row)
        print(" ".join(f"{v:>13}" for v in (str(i + 1), *(_cell(row.get(c)) for c in shown))))
    medians = {
        c: statistics.median(vals)
        for c in COLUMNS
        if (vals := [r[c] for r in rows if isinstance(r.get(c), int | float)])
    }
    print(" ".join(f"{v:>13}" for v in ("median", *(_cell(medians.get(c)) for c in shown))))
    total = medians.get("outside", float("nan"))
    print(
        f"median wall time {total:.1f} s: target <= {TARGET_S:.0f} s "
        f"{'met' if total <= TARGET_S else 'NOT met'}"
    )
    if any("calibration" in r for r in rows):
        print("note: calibration ran:", [r.get("calibration") for r in rows])
    if args.json:
        doc = {
            "machine": machine_line(),
            "command": command,
            "rows": rows,
            "median": medians,
            "target_s": TARGET_S,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
