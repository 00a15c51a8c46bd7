"""``scanproof export RUN_DIR --format edn``: the history for other tools.

``edn`` writes Jepsen-style operations, one EDN map per line (``:invoke`` then
``:ok`` / ``:fail`` / ``:info``, ``:process``, ``:time`` in ns, ``:f``, ``:value``),
to ``RUN_DIR/history.edn`` or ``--out FILE`` (``-`` for stdout). The mapping is in
docs/export.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import EXIT_PASS, UsageError

HELP = "write a run's history as Jepsen-style EDN operations (for Jepsen / Elle tooling)"
FORMATS = ("edn",)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--format", choices=FORMATS, default="edn", help="output format (default edn)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write (default RUN_DIR/history.edn; - for stdout)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.export.edn import EDN_FILE, edn_lines, write_edn
    from harness.history.tables import load_history

    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run directory; pass the directory a run wrote")
    if str(args.out) == "-":
        from harness.export.edn import run_t0_ns

        history = load_history(args.run_dir)
        for line in edn_lines(history, t0_ns=run_t0_ns(args.run_dir, history)):
            sys.stdout.write(line + "\n")
        return EXIT_PASS
    out = args.out or args.run_dir / EDN_FILE
    count = write_edn(args.run_dir, out)
    print(f"{out}: {count} operations ({args.format})")
    return EXIT_PASS
