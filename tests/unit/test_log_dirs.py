"""Clusters started without a log_dir share $TMPDIR/scanproof-logs: the oldest are pruned,
but never the directory of a cluster that still runs (CI once lost a running explore's
worker log directory to 20 newer clusters of other tests, and the explore crashed)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.cluster._cluster import LOG_ROOT_NAME, default_log_dir


def test_old_log_dirs_are_pruned_but_never_a_running_processs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / LOG_ROOT_NAME
    root.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(gone.stdout)
    # The oldest: 5 of a process that still runs (this one), 5 of one that ended.
    running = [root / f"20200101T0000{i:02d}.000000Z-{os.getpid()}" for i in range(5)]
    ended = [root / f"20200101T0001{i:02d}.000000Z-{dead_pid}" for i in range(5)]
    newer = [root / f"20210101T0000{i:02d}.000000Z-{dead_pid}" for i in range(20)]
    for d in (*running, *ended, *newer):
        d.mkdir()
    made = default_log_dir()
    assert made.is_dir()
    assert all(d.is_dir() for d in running)  # still written to: kept past the 20
    assert not any(d.exists() for d in ended)  # old and nobody's: pruned
    assert sum(d.exists() for d in newer) == 19  # the newest 20 include the new one
