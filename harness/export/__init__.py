"""Exports of a run's history to other tools' formats (today: Jepsen-style EDN).

>>> from harness.export import write_edn  # doctest: +SKIP
>>> write_edn(Path("scanproof-runs/r1"), Path("history.edn"))  # doctest: +SKIP
"""

from __future__ import annotations

from harness.export.edn import edn_lines, write_edn

__all__ = ["edn_lines", "write_edn"]
