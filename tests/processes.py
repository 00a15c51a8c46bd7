"""Which processes outlive a test: by identity (pid and start time), zombies excluded.

A pid alone is not a process: on a busy machine (pid_max 32768 here) a freed pid is
handed out again, so a process is "the same" only while its pid has the start time
it had when it was recorded. A zombie is dead (its parent will reap it, or PID 1).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.cluster._keeper import descendants as _walk


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of ``pid``, None when there is none."""
    try:
        raw = (Path("/proc") / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def record(pids: Iterable[int]) -> dict[int, int]:
    """The identity (start time) of each pid that runs now."""
    found = {pid: _stat(pid) for pid in pids}
    return {pid: stat[1] for pid, stat in found.items() if stat is not None}


def _still_there(pid: int, started: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] == started and stat[0] not in ("Z", "X")


def _describe(pid: int) -> str:
    try:
        cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        cmd = b"?"
    stat = _stat(pid)
    return f"{pid} ({stat[0] if stat else '?'}) {cmd.decode(errors='replace').strip()[:120]}"


def survivors(recorded: dict[int, int]) -> list[int]:
    """The recorded processes that still run (never a pid handed to another process)."""
    return [p for p, t in recorded.items() if _still_there(p, t)]


def assert_all_gone(recorded: dict[int, int], seconds: float = 8.0) -> None:
    """Wait up to ``seconds`` for every recorded process to be gone; fail naming the rest."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not survivors(recorded):
            return
        time.sleep(0.02)
    left = [_describe(p) for p in survivors(recorded)]
    assert left == [], f"left behind after {seconds:g} s: {left}"


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (the keeper's walk of ``/proc``)."""
    return set(_walk(pid))


_spawned: list[subprocess.Popen[Any]] = []


def spawn(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` for a test: conftest kills and reaps the process at the test's
    end if it still runs, however the test ended.

    A test that fails half-way (a timeout waiting for an exit, an assertion) would
    otherwise leave the process running past the suite, and the ``Popen``'s
    ResourceWarning ("subprocess ... is still running") would fail whichever later test
    the garbage collector happens to run in.
    """
    proc: subprocess.Popen[Any] = subprocess.Popen(*args, **kwargs)
    _spawned.append(proc)
    return proc


def end_spawned() -> list[int]:
    """Kill and reap what :func:`spawn` started and still runs; the pids it had to kill."""
    killed = []
    while _spawned:
        proc = _spawned.pop()
        if proc.poll() is None:
            killed.append(proc.pid)
            proc.kill()
        with proc:  # closes its pipes, waits for it
            pass
    return killed
