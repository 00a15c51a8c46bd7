"""The zygote: imports the app once, then forks ready-to-serve workers on request.

Run as ``python -m harness.cluster._zygote APP STATUS_FD PIPEDIR`` by the supervisor
(gunicorn's ``--preload`` idea). It reads commands from stdin, one per line:

    fork <index> <port> [<uds> [<incarnation>]]   fork worker <index> serving on <port>
                                                  (and <uds>), its output to the log pipe
                                                  ``PIPEDIR/<index>.pipe``

and reports on the status pipe: ``zygote-ready <pid>`` (app imported),
``zygote-error <message>`` (import failed), ``forked <index> <pid>``, and,
from the worker itself, ``ready <index> <pid>``. It exits on EOF of stdin or
when its parent is gone; its workers die with it (parent-death signal).

Forking happens on the zygote's only thread, so the parent-death signal of each
worker is tied to a thread that lives as long as the zygote.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType

from harness.cluster._logs import incarnation_header, open_log
from harness.cluster._proc import set_pdeathsig
from harness.cluster._worker import load_app, preload_server_modules, serve


def _reap(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def _fork_worker(
    app: object, index: int, port: int, uds: str, status_fd: int, logdir: Path, incarnation: int
) -> int:
    zygote = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    # In the worker. Anything raised here must end this process, never return into
    # the zygote's command loop.
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        set_pdeathsig(zygote)
        log_fd = open_log(str(logdir / f"{index}.log"))
        os.write(log_fd, incarnation_header(index, incarnation, os.getpid()).encode())
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(devnull)
        os.close(log_fd)
        from harness.cluster._proc import start_parent_watchdog

        start_parent_watchdog()
        serve(app, index=index, port=port, status_fd=status_fd, uds=uds)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(1)


def main(argv: list[str]) -> int:
    app_spec, status_fd, logdir = argv[0], int(argv[1]), Path(argv[2])
    parent = os.getppid()
    set_pdeathsig(parent)
    try:
        app = load_app(app_spec)
        preload_server_modules()
    except BaseException as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        os.write(status_fd, f"zygote-error {message}\n".encode())
        return 1
    signal.signal(signal.SIGCHLD, _reap)
    os.write(status_fd, f"zygote-ready {os.getpid()}\n".encode())
    pending = b""
    while True:
        # A bounded wait so a vanished parent is noticed even without the prctl.
        readable, _, _ = select.select([0], [], [], 0.5)
        if os.getppid() != parent:
            return 1
        if not readable:
            continue
        chunk = os.read(0, 4096)
        if not chunk:
            return 0
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            verb, *args = line.decode().split()
            if verb == "fork":
                index, port = int(args[0]), int(args[1])
                uds = args[2] if len(args) > 2 else ""
                incarnation = int(args[3]) if len(args) > 3 else 1
                pid = _fork_worker(app, index, port, uds, status_fd, logdir, incarnation)
                os.write(status_fd, f"forked {index} {pid}\n".encode())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
