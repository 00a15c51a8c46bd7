"""``scanproof replay FILE --repeat K``: re-run a recorded or shrunk schedule K times.

Prints, per anomaly class, in how many of the K repeats it came back. Exits
**1** when any anomaly came back (like a failing test: the bug reproduces),
**0** when none did, 2 on bad usage, 3 when the infrastructure failed.
``--check`` only validates the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli._options import add_target_options, check_target_args, number, whole_number
from harness.errors import EXIT_FAIL, EXIT_PASS

HELP = "re-run a replay file (e.g. explore's shrunk.toml) K times; count what came back"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="a replay .toml ([[steps]])")
    parser.add_argument(
        "--repeat",
        type=whole_number("--repeat", minimum=None),  # the range: harness.explore.replay
        default=10,
        help="repeats (default 10)",
    )
    parser.add_argument("--check", action="store_true", help="only validate FILE")
    add_target_options(parser, redis_default="auto")
    parser.add_argument(
        "--workers", type=whole_number("--workers"), default=None, help="default: the file's"
    )
    parser.add_argument(
        "--time-scale",
        type=number("--time-scale", unit=None),
        default=None,
        help="real seconds per service second: the reference runs on it (default 0.003); "
        "another app's clock (default: the contract's, the meta's, the file's, else calibrated)",
    )
    parser.add_argument("--contract", type=Path, default=None, help="contract .toml file")
    parser.add_argument("--retention-s", type=number("--retention-s"), default=None)
    parser.add_argument("--scan-deadline-s", type=number("--scan-deadline-s"), default=None)
    parser.add_argument("--out", type=Path, default=None, help="where the histories go")
    parser.add_argument(
        "--lanes",
        type=whole_number("--lanes"),
        default=2,
        help="clusters the repeats are shared between (default 2; 1..4)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.cli.explore import check_local_redis
    from harness.explore.replay import ReplayOptions, load_replay, replay
    from harness.run.runner import check_out_dir, print_progress
    from harness.targets.contract import Contract, load_contract

    flags = check_target_args(args)  # before anything starts: a bad value is exit 2
    if args.check:
        file = load_replay(args.file)
        print(f"{args.file}: a valid replay file {file.name!r}: {len(file.steps)} steps")
        return EXIT_PASS
    check_local_redis(args.redis, "replay")
    if args.out is not None:
        check_out_dir(args.out, holds="replayed.toml", what="replay")
    report = replay(
        ReplayOptions(
            path=args.file,
            repeat=args.repeat,
            app=args.app,
            preset=args.preset,
            flags=flags,
            redis=args.redis,
            time_scale=args.time_scale,
            workers=args.workers,
            contract=load_contract(args.contract) if args.contract else Contract(),
            contract_file=str(args.contract or ""),
            retention_s=args.retention_s,
            scan_deadline_s=args.scan_deadline_s,
            out=args.out,
            lanes=args.lanes,
        ),
        progress=print_progress,
    )
    print(
        f"replayed {args.file} ({len(report.file.steps)} steps) {report.repeat} times on "
        f"{report.target} in {report.seconds:.1f} s; histories in {report.out}"
    )
    if report.timing is not None:
        print(f"time base: {report.timing.describe()}")
    for note in report.notes:
        print(f"note: {note}")
    print(report.table())
    if report.any_reproduced:
        came = ", ".join(f"{n} {k}/{report.repeat}" for n, k in report.reproduced.items() if k)
        print(f"reproduced: {came}")
        return EXIT_FAIL
    print("no anomaly came back")
    return EXIT_PASS
