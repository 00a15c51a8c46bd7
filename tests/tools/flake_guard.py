"""Run chosen tests N times beside a CPU burner and count the failures.

A test that passes on an idle machine and fails on a loaded one has a race; this
makes the load on purpose. The burner is ``--burners`` busy-looping processes
(default: one per core), started before the first run and killed after the last.

    python tests/tools/flake_guard.py -n 5 tests/integration/test_run_toy_app.py
    python tests/tools/flake_guard.py -n 5 -m processes tests/integration
    python tests/tools/flake_guard.py -n 1 -m "slow and processes" --logs guard/ tests
    python tests/tools/flake_guard.py -n 1 -m "slow or not slow" -- tests --durations=0

After ``--`` come pytest's own options as well as the selection.

Each round is one pytest process over the given selection; the script prints,
per round, the pass/fail counts and the failing test ids, then a summary line
``flake guard: N rounds, F failed rounds, tests that failed: ...``. Exit 1 when
any round failed, 0 otherwise, 2 for bad arguments. ``--logs DIR`` keeps each
round's whole pytest output (tracebacks, the slowest durations) as
``DIR/round-<k>.log``, and its tests' temporary directories (run directories with
their histories and verdicts) in ``DIR/round-<k>-tmp``: pytest alone keeps only its
last three, so a failing round's evidence would be gone by the next.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_SUMMARY = re.compile(r"^(?:=+ )?(\d+ (?:passed|failed|error).*?) in [\d.]+s", re.MULTILINE)


def _burn() -> None:  # pragma: no cover - runs in the burner processes
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("selection", nargs="+", help="test files, dirs or node ids")
    parser.add_argument("-n", "--rounds", type=int, default=5)
    parser.add_argument("-m", "--marker", default="", help="a pytest -m expression")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per round")
    parser.add_argument("--logs", type=Path, default=None, help="keep each round's output here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.burners < 0:
        parser.error(f"--rounds {args.rounds} / --burners {args.burners}: must be >= 1 / >= 0")
    if args.logs is not None:
        args.logs = args.logs.resolve()  # pytest runs in the project's root
        args.logs.mkdir(parents=True, exist_ok=True)  # --basetemp's parent must exist
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.selection]
    if args.marker:
        command += ["-m", args.marker]
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burners)]
    for b in burners:
        b.start()
    failed_rounds = 0
    failures: Counter[str] = Counter()
    try:
        for round_no in range(1, args.rounds + 1):
            started = time.monotonic()
            keep = (
                [] if args.logs is None else [f"--basetemp={args.logs / f'round-{round_no}-tmp'}"]
            )
            done = subprocess.run(
                [*command, *keep], cwd=ROOT, capture_output=True, text=True, timeout=args.timeout
            )
            ids = _FAILED.findall(done.stdout)
            summary = _SUMMARY.findall(done.stdout)
            took = time.monotonic() - started
            if args.logs is not None:
                log = args.logs / f"round-{round_no}.log"
                log.write_text(done.stdout + done.stderr, encoding="utf-8")
            line = summary[-1] if summary else f"pytest exited {done.returncode}"
            print(f"round {round_no}/{args.rounds}: {line} ({took:.0f} s)", flush=True)
            for test_id in ids:
                print(f"    {test_id}", flush=True)
            failures.update(ids)
            if done.returncode != 0:
                failed_rounds += 1
    finally:
        for b in burners:
            b.kill()
    listed = ", ".join(f"{t} x{n}" for t, n in failures.most_common()) or "none"
    print(
        f"flake guard: {args.rounds} rounds beside {args.burners} burner(s), "
        f"{failed_rounds} failed rounds, tests that failed: {listed}"
    )
    return 1 if failed_rounds else 0


if __name__ == "__main__":
    sys.exit(main())
