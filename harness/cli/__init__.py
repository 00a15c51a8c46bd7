"""The ``scanproof`` command line: ``main(argv)`` and one module per verb.

Each verb module exposes ``HELP``, ``configure(parser)`` and ``run(args)``;
:data:`VERBS` maps verb names to them. Shared options live in ``_options``.
"""

from __future__ import annotations

from harness.cli._main import VERBS, main

__all__ = ["VERBS", "main"]
