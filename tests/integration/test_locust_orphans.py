"""Locust, the one child a run starts outside the cluster, never outlives scanproof.

``scanproof run --driver locust`` runs as a real subprocess in a session of its
own; once locust has spawned its users we record the run's whole process tree
(Redis, the router, the workers, locust), send a signal to scanproof's pid only
(as ``kill -INT <pid>`` does, not a terminal's Ctrl-C to the whole group), and
require every one of those processes to be gone within a few seconds.

When locust itself fails, the error names the command, the log file and its
last lines.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.errors import InfrastructureError
from harness.run import _locust
from harness.run._locust import LOCUST_LOG, locust_command, run_locust
from tests.processes import assert_all_gone, record, spawn, survivors

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
_READY = b"All users spawned"
_STOPPING = b"Got SIGTERM signal"  # locust's log line
_RUN = [
    *("run", "--driver", "locust", "--users", "4", "--spawn-rate", "4"),
    *("--workers", "2", "--redis", "embedded", "--scenario", "steady", "--duration", "30"),
    "--quiet",
]


def _tree(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid`` with its command line."""
    tree = {}
    for child in psutil.Process(pid).children(recursive=True):
        try:
            tree[child.pid] = " ".join(child.cmdline())
        except psutil.Error:
            continue
    return tree


def _start_locust_run(run_dir: Path) -> tuple[subprocess.Popen[bytes], dict[int, str]]:
    """Start a locust run; return it and its process tree once locust's users run."""
    proc = spawn(
        [sys.executable, "-m", "harness", *_RUN, "--out", str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C in the terminal of pytest does not reach it
    )
    log = run_dir / LOCUST_LOG
    deadline = time.monotonic() + 60
    while True:
        tree = _tree(proc.pid)
        locust_runs = any(" -m locust " in cmd for cmd in tree.values())
        if locust_runs and log.exists() and _READY in log.read_bytes():
            return proc, tree
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            pytest.fail(f"locust never started its users:\n{out.decode()}{err.decode()}")
        time.sleep(0.05)


def _await_in_log(log: Path, text: bytes, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while text not in log.read_bytes() and proc.poll() is None:
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "signals",
    [
        (signal.SIGINT,),
        (signal.SIGTERM,),
        (signal.SIGKILL,),
        (signal.SIGINT, signal.SIGINT),  # an impatient second Ctrl-C during locust's stop
    ],
    ids=["SIGINT", "SIGTERM", "SIGKILL", "SIGINT-twice"],
)
def test_locust_dies_with_scanproof_whatever_signal_reaches_its_pid(
    tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    run_dir = tmp_path / "run"
    proc, tree = _start_locust_run(run_dir)
    identities = record(tree)
    try:
        assert len(tree) >= 5, tree  # Redis, router, workers' parent, 2 workers, locust
        first, *then = signals
        os.kill(proc.pid, first)
        for signum in then:
            # a signal sent before the first was handled would merge with it
            _await_in_log(run_dir / LOCUST_LOG, _STOPPING, proc)
            if proc.poll() is None:
                os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=30)
        assert_all_gone(identities, seconds=5.0)
    finally:
        for pid in survivors(identities):  # a failed test leaves nothing behind either
            os.kill(pid, signal.SIGKILL)
    if first == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return
    err = stderr.decode()
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "scanproof run: interrupted"
    assert "Traceback" not in err
    assert "is closed" not in err  # asyncio's "Loop ... that handles pid ... is closed"
    # stopped, not just killed: locust was asked first, so that it can write its reports
    assert _STOPPING in (run_dir / LOCUST_LOG).read_bytes()
    if len(signals) == 1:  # given its grace period, locust stopped its users and reported
        assert (run_dir / "locust.json").exists()
        assert b"Bad file descriptor" not in (run_dir / LOCUST_LOG).read_bytes()


# --- when locust fails: what, and where -------------------------------------------------


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _run(cmd: list[str], run_dir: Path) -> None:
    asyncio.run(run_locust(cmd, dict(os.environ), run_dir))


def test_a_locustfile_that_does_not_import_is_an_infrastructure_error(tmp_path: Path) -> None:
    # locust exits 1 here, as it does after a run where some request failed: only the
    # missing final statistics tell the two apart
    broken = tmp_path / "broken.py"
    broken.write_text('raise ImportError("no such thing in this locustfile")\n')
    cmd = locust_command("http://127.0.0.1:9", tmp_path, users=1, spawn_rate=1, run_s=2)
    cmd[cmd.index("-f") + 1] = str(broken)
    with pytest.raises(InfrastructureError) as info:
        _run(cmd, tmp_path)
    first, *tail = str(info.value).splitlines()
    assert first == (
        "locust exited with code 1 (locust never ran: it wrote no locust.json); "
        f"command: {shlex.join(cmd)}; last lines of {tmp_path / LOCUST_LOG}:"
    )
    assert tail[-1] == "ImportError: no such thing in this locustfile"


@pytest.mark.parametrize(
    ("code", "ended"),
    [
        (
            "import sys; print('gevent is broken', file=sys.stderr); sys.exit(3)",
            "exited with code 3",
        ),
        (
            "import os; print('gevent is broken', flush=True); os.kill(os.getpid(), 9)",
            "was killed by SIGKILL",
        ),
    ],
    ids=["exit-3", "SIGKILL"],
)
def test_locust_failing_names_how_it_ended_its_command_and_its_log(
    tmp_path: Path, code: str, ended: str
) -> None:
    cmd = _python(code)
    with pytest.raises(InfrastructureError) as info:
        _run(cmd, tmp_path)
    assert str(info.value) == (
        f"locust {ended} (locust itself failed); command: {shlex.join(cmd)}; "
        f"last lines of {tmp_path / LOCUST_LOG}:\ngevent is broken"
    )


@pytest.mark.parametrize("code", [0, 1], ids=["exit-0", "exit-1-some-request-failed"])
def test_locust_that_ran_and_wrote_its_statistics_is_no_error(tmp_path: Path, code: int) -> None:
    report = tmp_path / "locust.json"
    _run(
        _python(
            f"import pathlib, sys; pathlib.Path({str(report)!r}).write_text('[]'); sys.exit({code})"
        ),
        tmp_path,
    )
    assert report.read_text() == "[]"


def test_a_cancelled_run_stops_locusts_whole_group_even_when_locust_ignores_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a locust that hangs in its own shutdown, with a child of its own (locust's
    # judging subprocess, a worker): SIGKILL for the whole group after the grace
    monkeypatch.setattr(_locust, "_STOP_GRACE_S", 0.5)
    pids = tmp_path / "pids"
    code = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )

    async def start_then_cancel() -> list[int]:
        task = asyncio.create_task(run_locust(_python(code), dict(os.environ), tmp_path))
        deadline = time.monotonic() + 10
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert time.monotonic() < deadline, "the fake locust never started"
            await asyncio.sleep(0.02)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert 0.5 <= time.monotonic() - started < 5
        return [int(p) for p in pids.read_text().split()]

    leader, child = asyncio.run(start_then_cancel())
    assert_all_gone(record({leader, child}), seconds=2.0)
