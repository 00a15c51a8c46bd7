"""The ``scanproof`` command line.

Each verb lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``; this module only wires them up, maps exceptions to exit
codes and keeps tracebacks away from users.

Exit codes: 0 pass, 1 fail (a threshold exceeded), 2 bad usage or config,
3 infrastructure failure (verdict unknown), 130 interrupted.

>>> main(["--version"])  # doctest: +SKIP
scanproof 0.1.0
0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from harness._version import __version__
from harness.errors import EXIT_INTERRUPTED, EXIT_USAGE, ScanproofError


class _VerbModule(Protocol):
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# verb name -> module implementing it; the order is the order of `scanproof --help`.
VERBS: dict[str, str] = {
    "run": "harness._cmd_run",
    "up": "harness._cmd_up",
    "gate": "harness._cmd_gate",
    "check": "harness._cmd_check",
    "report": "harness._cmd_report",
    "validate": "harness._cmd_validate",
    "matrix": "harness._cmd_matrix",
    "claims": "harness._cmd_claims",
    "compare": "harness._cmd_compare",
    "explore": "harness._cmd_explore",
    "replay": "harness._cmd_replay",
}


def _load(module_name: str) -> _VerbModule:
    return cast(_VerbModule, importlib.import_module(module_name))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one sub-command per verb."""
    parser = argparse.ArgumentParser(
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return EXIT_USAGE
    module = _load(args._module)
    try:
        return module.run(args)
    except ScanproofError as exc:
        print(f"scanproof {args.verb}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"scanproof {args.verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
