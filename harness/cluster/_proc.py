"""Process plumbing shared by the Redis backends, the supervisor and the router.

Every process the cluster starts must die with the harness, however the harness
ends. Three layers make sure of it:

1. ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` in each child: the kernel kills it when
   the thread that forked it exits (so fork from the main thread);
2. a parent-pid watchdog thread in our own Python children, for the window
   before the prctl and for platforms without it;
3. process groups, so teardown is one ``killpg`` per group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from harness.errors import InfrastructureError

_PR_SET_PDEATHSIG = 1
LOOPBACK = "127.0.0.1"


def set_pdeathsig(expected_parent: int | None = None) -> None:
    """Ask the kernel to SIGKILL this process when its parent thread exits.

    When ``expected_parent`` is given and the parent is already gone (we were
    re-parented before the prctl landed), exit at once.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)


def start_parent_watchdog(interval: float = 0.5) -> None:
    """Exit this process (without cleanup) within ``interval`` s of its parent dying."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="scanproof-parent-watchdog", daemon=True).start()


def read_line(stream: IO[bytes], timeout: float) -> str:
    """One line from a child's stdout (stripped), or "" when none comes within ``timeout``."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return stream.readline().decode().strip()


_PICK = random.Random()  # seeded from the OS: parallel harnesses pick apart
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PICK = 10000  # below this live well-known services (6379, 8000, 8080...)


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ``bind(0)`` and outgoing connections (Linux default if unknown)."""
    try:
        low, high = (int(field) for field in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, for programs that bind it themselves.

    The port is picked outside the kernel's ephemeral range: between our check and
    the program's own bind, any other process's ``bind(0)`` or outgoing connection
    draws from the ephemeral range and so cannot take it (a router that bound port 0
    once took the port just picked for Redis). The same holds while a killed Redis
    restarts on its port. Falls back to ``bind(0)`` if no such port is free.
    """
    low, high = _ephemeral_range()
    spans = [(lo, hi) for lo, hi in ((_LOWEST_PICK, low - 1), (high + 1, 65535)) if lo <= hi]
    sizes = [hi - lo + 1 for lo, hi in spans]
    for _ in range(256 if spans else 0):
        index = _PICK.randrange(sum(sizes))
        for (lo, _hi), size in zip(spans, sizes, strict=True):
            if index < size:
                port = lo + index
                break
            index -= size
        if _bindable(port):
            return port
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def reserve_port() -> socket.socket:
    """A bound, non-listening loopback socket that holds a port for one worker.

    Workers bind the same port with ``SO_REUSEPORT`` and listen on their own
    socket. While no worker listens, connects are refused at once (a quick 502
    in the router) yet no other program can take the port, so a restarted
    worker comes back on the same address.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((LOOPBACK, 0))
    return sock


def listen_on_reserved(port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket of a worker on a port held by :func:`reserve_port`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def process_state(pid: int) -> str | None:
    """The one-letter state from ``/proc/<pid>/stat`` (R, S, T, Z...), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3].decode()


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs or is stopped; False once it is a zombie or gone."""
    return process_state(pid) not in (None, "Z", "X")


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.002
) -> None:
    """Poll ``condition`` until true; InfrastructureError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise InfrastructureError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _child_setup(parent: int) -> Callable[[], None]:
    def setup() -> None:
        set_pdeathsig(parent)

    return setup


def spawn_child(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, dying with us, logging to ``log``.

    stderr (and stdout unless redirected) go to ``log``. Safe to call from any
    thread: the kernel sends the parent-death signal when the *thread* that
    started a child exits, so a call from a short-lived thread (``asyncio.to_thread``,
    a thread pool) is handed to one launcher thread that lives as long as we do.
    """
    if threading.current_thread() is threading.main_thread():
        return _popen(argv, log, env, cwd, stdin, stdout, pass_fds)
    return _launcher().submit(_popen, argv, log, env, cwd, stdin, stdout, pass_fds).result()


_LAUNCHER: list[ThreadPoolExecutor] = []
_LAUNCHER_LOCK = threading.Lock()


def _launcher() -> ThreadPoolExecutor:
    with _LAUNCHER_LOCK:
        if not _LAUNCHER:
            _LAUNCHER.append(ThreadPoolExecutor(1, thread_name_prefix="scanproof-launcher"))
        return _LAUNCHER[0]


def _popen(
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None,
    cwd: str | None,
    stdin: int | IO[bytes] | None,
    stdout: int | IO[bytes] | None,
    pass_fds: Sequence[int],
) -> subprocess.Popen[bytes]:
    with log.open("ab") as log_file:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout if stdout is not None else log_file,
            stderr=log_file,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            pass_fds=tuple(pass_fds),
            process_group=0,
            # preexec_fn, not a flag: the kernel's parent-death signal must be set in
            # the child, between fork and exec, to cover programs we do not write.
            preexec_fn=_child_setup(os.getpid()),
        )


def kill_group(proc: subprocess.Popen[bytes], *, grace: float = 0.0) -> None:
    """SIGTERM (if ``grace``) then SIGKILL the process group led by ``proc``; reap it."""
    if grace > 0 and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # Kill the group even when the leader is gone: its children may remain.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
