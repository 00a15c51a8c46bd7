"""The keeper of a command worker: whatever ends the harness, the command's whole tree goes.

A Python harness holds one command worker whose shell leaves a background job, a
``setsid`` daemon (out of the worker's process group) and a paused group behind; it
is SIGKILLed, and every one of those processes must be gone within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster._keeper import descendants
from tests.processes import assert_all_gone, record, spawn
from tests.scanproof_cli import ROOT

pytestmark = pytest.mark.processes

_SCRIPT = """
import sys, tempfile, time
from pathlib import Path
from harness.cluster.command import CommandSupervisor
cmd = ("sleep 600 & setsid sleep 601 & "
       "exec python3 -m http.server {port} --bind 127.0.0.1")
sup = CommandSupervisor(cmd, 1, redis_url="redis://127.0.0.1:1", workdir=Path(tempfile.mkdtemp()))
sup.start()
if sys.argv[1] == "pause":
    sup.pause(0)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("state", ["running", "pause"])
def test_sigkill_of_the_harness_takes_jobs_daemons_and_stopped_processes(state: str) -> None:
    proc = spawn(
        [sys.executable, "-c", _SCRIPT, state], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    tree = record(descendants(proc.pid))
    sleeps = [p for p in tree if Path(f"/proc/{p}/comm").read_text().strip() == "sleep"]
    assert len(sleeps) == 2  # the background job and the setsid daemon
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert len(tree) >= 4  # keeper, server, two sleeps
    assert_all_gone(tree, seconds=5.0)
