"""The first witness of each anomaly class of a run, in words, for claims and matrices.

>>> first_witness_words(Path("runs/mixed-s0"))["status_not_found"]  # doctest: +SKIP
'Poll #1 of scan scan_f959... by tenant1 was served by worker 2 at 0.28 s and said not_found, ...'

The same sentences as ``report.md`` (see :mod:`reports.witness`), as plain text.
"""

from __future__ import annotations

from pathlib import Path

from reports._load import load_run
from reports.witness import ScanIndex, describe_witness


def first_witness_words(run_dir: Path) -> dict[str, str]:
    """Class -> its first recorded witness told in words (classes without one are left out)."""
    run = load_run(Path(run_dir))
    scans = ScanIndex(run.ops)
    return {
        name: describe_witness(result.witnesses[0], scans, run.faults, t0_ns=run.t0_ns).plain()
        for name, result in run.verdict.classes.items()
        if result.witnesses
    }
