"""The suite's own helpers: ``tests.processes.spawn`` and the conftest's SIGINT rule.

A helper that fails quietly makes other tests lie, so these are tested like the
product: a test's process must not outlive it, and a test's Ctrl-C must reach the
processes it starts even when pytest itself was started as a background job.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from harness.cluster._proc import is_alive
from tests.processes import end_spawned, spawn

ROOT = Path(__file__).resolve().parents[2]


def test_end_spawned_kills_and_reaps_what_still_runs() -> None:
    done = spawn([sys.executable, "-c", "pass"])
    running = spawn([sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.PIPE)
    done.wait(timeout=30)
    assert end_spawned() == [running.pid]  # only the one that still ran had to be killed
    assert running.returncode == -signal.SIGKILL  # reaped: no zombie, no ResourceWarning
    assert running.stdout is not None
    assert running.stdout.closed
    assert not is_alive(running.pid)
    assert end_spawned() == []


def test_processes_a_test_starts_answer_ctrl_c_when_pytest_ignores_sigint(tmp_path: Path) -> None:
    # A shell's background job (`pytest &`, nohup) starts with SIGINT ignored, and an
    # ignored signal stays ignored across exec: without the conftest's rule, the child
    # below would start with SIGINT ignored too, and no Ctrl-C test could pass.
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            import subprocess, sys

            def test_child_starts_with_python_s_sigint_handler():
                code = (
                    "import signal, sys; "
                    "sys.exit(signal.getsignal(signal.SIGINT) is not signal.default_int_handler)"
                )
                assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
            """
        )
    )

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(probe)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=ignore_sigint,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
