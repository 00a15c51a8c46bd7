"""``scanproof replay FILE --repeat K``: re-run a recorded or shrunk schedule K times.

Prints, per anomaly class, in how many of the K repeats it came back. Exits
**1** when any anomaly came back (like a failing test: the bug reproduces),
**0** when none did, 2 on bad usage, 3 when the infrastructure failed.
``--check`` only validates the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._cli_options import add_target_options
from harness.errors import EXIT_FAIL, EXIT_PASS

HELP = "re-run a replay file (e.g. explore's shrunk.toml) K times; count what came back"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="a replay .toml ([[steps]])")
    parser.add_argument("--repeat", type=int, default=10, help="repeats (default 10)")
    parser.add_argument("--check", action="store_true", help="only validate FILE")
    add_target_options(parser, redis_default="auto")
    parser.add_argument("--workers", type=int, default=None, help="default: the file's")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.003,
        help="reference service time scale (default 0.003: a scan takes ~0.5 s)",
    )
    parser.add_argument("--contract", type=Path, default=None, help="contract .toml file")
    parser.add_argument("--retention-s", type=float, default=None)
    parser.add_argument("--scan-deadline-s", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="where the histories go")


def run(args: argparse.Namespace) -> int:
    from harness._cli_options import parse_flags
    from harness.contract import Contract, load_contract
    from harness.replay import ReplayOptions, load_replay, replay

    if args.check:
        file = load_replay(args.file)
        print(f"{args.file}: a valid replay file {file.name!r}: {len(file.steps)} steps")
        return EXIT_PASS
    report = replay(
        ReplayOptions(
            path=args.file,
            repeat=args.repeat,
            app=args.app,
            preset=args.preset,
            flags=parse_flags(args.flag),
            redis=args.redis,
            time_scale=args.time_scale,
            workers=args.workers,
            contract=load_contract(args.contract) if args.contract else Contract(),
            retention_s=args.retention_s,
            scan_deadline_s=args.scan_deadline_s,
            out=args.out,
        )
    )
    print(
        f"replayed {args.file} ({len(report.file.steps)} steps) {report.repeat} times on "
        f"{report.target} in {report.seconds:.1f} s; histories in {report.out}"
    )
    print(report.table())
    if report.any_reproduced:
        came = ", ".join(f"{n} {k}/{report.repeat}" for n, k in report.reproduced.items() if k)
        print(f"reproduced: {came}")
        return EXIT_FAIL
    print("no anomaly came back")
    return EXIT_PASS
