"""Run the scanproof command line as a user would: a subprocess, bounded in time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scanproof(
    *argv: str, cwd: Path = ROOT, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGV`` in ``cwd`` (the repository: test apps import from it)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
