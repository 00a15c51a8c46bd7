"""The keeper of one command worker: runs the command in its own process group, and
takes the whole group (and every descendant) down with it.

Run as ``python -I _keeper.py PARENT_PID HEADER COMMAND`` (a script of the standard
library only, so no module of the user's working directory can shadow it). It:

1. asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``; until then
   :func:`harness.cluster._proc.spawn_child` gave it SIGKILL) and exits at once if the
   parent is already gone; it becomes a child subreaper, so orphaned descendants of the
   command (a gunicorn master's workers, a shell's background jobs) are re-parented to it;
2. starts ``/bin/sh -c COMMAND`` as the leader of a new process group, stdout and
   stderr on its own stderr (the worker's log, after ``HEADER`` with ``{pid}`` filled in),
   and prints ``pid <leader>`` on stdout;
3. waits until the leader exits, its parent dies (SIGTERM/SIGINT/SIGHUP or a changed
   parent pid) and then SIGKILLs the command's group and every descendant, stopped ones
   included, reaps them and exits with the leader's exit code (128 + signal if killed).

The keeper is in a process group of its own, apart from the command's, so pausing the
command (SIGSTOP to its group) never stops the keeper.

>>> _exit_code(0), _exit_code(127 << 8), _exit_code(9)  # raw wait statuses
(0, 127, 137)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_WATCH_INTERVAL_S = 0.25
_CLEANUP_DEADLINE_S = 5.0


class _Stop(Exception):
    """Raised in the main thread by SIGTERM, SIGINT or SIGHUP."""


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _exit_code(status: int) -> int:
    """The shell-style exit code of a raw wait status."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def descendants(root: int) -> Iterator[int]:
    """Every process below ``root`` in the process tree (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            yield child
            todo.append(child)


def _reap() -> dict[int, int]:
    """Reap every child that has exited; pid -> raw status."""
    reaped: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped[pid] = status


def _kill_everything(group: int) -> None:
    """SIGKILL the command's group and every descendant of ours until none is left."""
    me = os.getpid()
    deadline = os.times().elapsed + _CLEANUP_DEADLINE_S
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)  # stopped members die of SIGKILL too
        left = list(descendants(me))
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        if not left or os.times().elapsed > deadline:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, 0)  # block until one of them is gone, then look again


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _Stop


def main(argv: list[str]) -> int:
    parent, header, command = int(argv[0]), argv[1], argv[2]
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 1
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    leader = 0
    code = 1
    try:

        def before_exec() -> None:  # in the child: the keeper runs no other thread
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            os.write(2, header.replace("{pid}", str(os.getpid())).encode())

        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=2,
            stderr=2,
            process_group=0,
            preexec_fn=before_exec,
        )
        leader = proc.pid
        print(f"pid {leader}", flush=True)
        pidfd = os.pidfd_open(leader)
        while True:
            select.select([pidfd], [], [], _WATCH_INTERVAL_S)
            reaped = _reap()
            if leader in reaped:
                code = _exit_code(reaped[leader])
                break
            if os.getppid() != parent:
                break
    except _Stop:
        code = 128 + signal.SIGTERM
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if leader:
            _kill_everything(leader)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
