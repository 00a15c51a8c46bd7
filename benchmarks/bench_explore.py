"""Wall time of ``scanproof explore`` on a correct service: one lane against two.

Runs the command once per lane count per round, the order alternating between
rounds (1 then 2, 2 then 1, ...), each in a fresh output directory, and parses its
summary line (``explored S seeds and E examples in T s``). Prints a machine line,
the command, one row per run and, per lane count, the median seconds and seconds
per example; the last line is the ratio of the medians (one lane / two lanes).
Issue 17's target: 100 examples of a correct service in <= 120 s.

Usage::

    python benchmarks/bench_explore.py --rounds 2 --json explore.json
    python benchmarks/bench_explore.py --rounds 1 --examples 20     # a quick check

The default target is the zoo's correct jobs service (1-2 s scans, no meta
endpoint, so each run calibrates its time base first) with its own contract.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_line

ROOT = Path(__file__).resolve().parents[1]
_SUMMARY = re.compile(r"explored (\d+) seeds and (\d+) examples in ([\d.]+) s")
TARGET_S = 120.0


def one_run(command: list[str]) -> dict[str, Any]:
    """Run ``command`` with a fresh ``--out``; seeds, examples and seconds it reports."""
    out = Path(tempfile.mkdtemp(prefix="bench-explore-"))
    try:
        began = time.perf_counter()
        done = subprocess.run(
            [*command, "--out", str(out / "out")], cwd=ROOT, capture_output=True, text=True
        )
        outside = time.perf_counter() - began
    finally:
        shutil.rmtree(out, ignore_errors=True)
    found = _SUMMARY.search(done.stdout)
    if done.returncode != 0 or found is None:
        sys.exit(f"explore exited {done.returncode}:\n{done.stdout}\n{done.stderr[-2000:]}")
    seeds, examples, seconds = int(found[1]), int(found[2]), float(found[3])
    return {"seeds": seeds, "examples": examples, "seconds": seconds, "outside": outside}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--app", default="tests.zoo.jobs:app")
    parser.add_argument("--contract", default="tests/zoo/jobs.toml")
    parser.add_argument("--lanes", default="1,2", help="comma-separated lane counts")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    lanes = [int(n) for n in args.lanes.split(",")]
    base = [
        sys.executable, "-m", "harness", "explore", "--app", args.app,
        "--contract", args.contract, "--redis", "server", "--profile", "ci",
        "--max-examples", str(args.examples),
    ]  # fmt: skip
    print(machine_line())
    print("command: " + " ".join(base[1:]) + " --lanes N --out DIR")
    rows: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for n in lanes if r % 2 == 0 else list(reversed(lanes)):
            row = {"round": r + 1, "lanes": n, **one_run([*base, "--lanes", str(n)])}
            rows.append(row)
            per = row["seconds"] / max(1, row["examples"] + row["seeds"])
            print(
                f"round {row['round']} lanes {n}: {row['seeds']} seeds + {row['examples']} "
                f"examples in {row['seconds']:.1f} s ({per:.2f} s each; "
                f"{row['outside']:.1f} s outside)",
                flush=True,
            )
    medians = {}
    for n in lanes:
        mine = [row for row in rows if row["lanes"] == n]
        medians[n] = statistics.median(row["seconds"] for row in mine)
        met = "met" if medians[n] <= TARGET_S else "not met"
        print(f"lanes {n}: median {medians[n]:.1f} s (<= {TARGET_S:.0f} s: {met})")
    if len(lanes) == 2:
        ratio = medians[lanes[0]] / medians[lanes[1]]
        print(f"ratio lanes {lanes[0]} / lanes {lanes[1]}: {ratio:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
