"""The ``scanproof`` command line.

Each verb lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``; this module only wires them up, maps exceptions to exit
codes and keeps tracebacks away from users.

Exit codes: 0 pass, 1 fail (a threshold exceeded), 2 bad usage or config,
3 infrastructure failure (verdict unknown), 130 interrupted. Every exit 2 is one
line on stderr naming the bad value and the fix, argparse's errors included.
SIGTERM (``kill``, ``timeout``, a CI job's cancel) stops every verb as Ctrl-C does:
what it has is written and judged, its processes are stopped, exit 130. A verb
started with SIGINT ignored (a shell's background job) keeps ignoring Ctrl-C, as
Unix programs do; SIGTERM still stops it.

>>> main(["--version"])  # doctest: +SKIP
scanproof 0.1.0
0
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn, Protocol, cast

from harness._version import __version__
from harness.errors import EXIT_INTERRUPTED, EXIT_USAGE, ScanproofError


class _VerbModule(Protocol):
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# verb name -> module implementing it; the order is the order of `scanproof --help`.
VERBS: dict[str, str] = {
    "run": "harness.cli.run",
    "up": "harness.cli.up",
    "gate": "harness.cli.gate",
    "check": "harness.cli.check",
    "report": "harness.cli.report",
    "validate": "harness.cli.validate",
    "calibrate": "harness.cli.calibrate",
    "matrix": "harness.cli.matrix",
    "claims": "harness.cli.claims",
    "compare": "harness.cli.compare",
    "explore": "harness.cli.explore",
    "replay": "harness.cli.replay",
    "export": "harness.cli.export",
}


def _load(module_name: str) -> _VerbModule:
    return cast(_VerbModule, importlib.import_module(module_name))


class BadArguments(Exception):
    """What argparse would print with an 11-line usage block, as one line for ``main``."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


def _one_line(message: str, prog: str) -> str:
    # argparse says "argument --workers: --workers abc: must be ..." for our type
    # functions (harness.cli._options), whose message already names the option
    m = re.fullmatch(r"argument ([^:]+): (.*)", message, flags=re.DOTALL)
    if m is not None and any(m[2].startswith(name + " ") for name in m[1].split("/")):
        return m[2]
    text = f"{m[1]}: {m[2]}" if m is not None else message
    return f"{' '.join(text.split())}; see {prog} --help"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the value and the fix (exit 2),
    not a usage block; the verbs' sub-parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        raise BadArguments(self.prog, _one_line(message, self.prog))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one sub-command per verb. A bad argument raises
    :class:`BadArguments` (``main`` prints it as one line and returns 2)."""
    parser = _Parser(
        prog="scanproof",
        description=(
            "Reliability test harness and chaos simulator for web services that run "
            "as several worker processes sharing Redis."
        ),
        epilog="Exit codes: 0 pass, 1 fail, 2 bad usage, 3 unknown (infrastructure failure).",
    )
    parser.add_argument("--version", action="version", version=f"scanproof {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    for name, module_name in VERBS.items():
        module = _load(module_name)
        verb_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(verb_parser)
        verb_parser.set_defaults(_module=module_name)
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the block (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            prog = f"scanproof {args.verb}" if args.verb else "scanproof"
            raise BadArguments(prog, _one_line(f"unrecognized arguments: {' '.join(extra)}", prog))
    except BadArguments as exc:
        print(f"{exc.prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.verb is None:
        parser.print_help()
        return EXIT_USAGE
    module = _load(args._module)
    try:
        with _sigterm_as_ctrl_c():
            return module.run(args)
    except ScanproofError as exc:
        print(f"scanproof {args.verb}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"scanproof {args.verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
