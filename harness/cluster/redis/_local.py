"""Redis processes the cluster starts and owns: fakeredis (``embedded``) and ``redis-server``.

Public names are re-exported by :mod:`harness.cluster.redis`; use that module.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Final

from harness.cluster._proc import (
    LOOPBACK,
    free_port,
    is_alive,
    kill_group,
    process_state,
    spawn_child,
    tail,
    wait_until,
)
from harness.cluster.events import EventKind
from harness.cluster.redis._base import Fault, RedisBackend
from harness.errors import InfrastructureError, UsageError

_READY_TIMEOUT: Final = 10.0
_LISTEN: Final = "0A"  # the TCP state LISTEN in /proc/net/tcp


def port_holder(port: int) -> str:
    """Who listens on TCP ``port`` (``"pid 4242 (redis-server *:6379)"``), read from
    /proc without extra packages; "" when nobody does (or /proc cannot tell)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            listening = len(fields) > 9 and fields[3] == _LISTEN
            if listening and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return ""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                command = " ".join(argv.decode(errors="replace").split())
                return f"pid {proc.name} ({command[:80]})"
        except OSError:  # gone, or not ours to look at
            continue
    return "another process (not visible from here)"


class _LocalBackend(RedisBackend):
    """A Redis process we started and own: every fault is allowed."""

    def __init__(self, workdir: Path | None, *, note: str = "", wait: bool = True) -> None:
        self._owns_workdir = workdir is None
        self._workdir = workdir or Path(tempfile.mkdtemp(prefix="scanproof-redis-"))
        self._port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        # Faults run concurrently (the nemesis applies each on its own thread): two restarts,
        # or a restart and a stall, must not interleave. Without this, one restart killed the
        # server the other was waiting on, closing the pipe it read ("readline of closed file").
        self._process_lock = threading.RLock()
        super().__init__(f"redis://{LOOPBACK}:{self._port}/0", note=note)
        self._launch()
        if wait:
            self.wait_ready()

    @property
    def _log(self) -> Path:
        return self._workdir / f"redis-{self.name}.log"

    def _launch(self) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        self._launch()
        self.wait_ready()

    def pids(self) -> list[int]:
        return [self._proc.pid] if self._proc is not None else []

    def _running(self) -> subprocess.Popen[bytes]:
        """The server process, or InfrastructureError when there is none (a failed restart)."""
        if self._proc is None:
            raise InfrastructureError(
                f"{self.name} Redis on port {self._port} is not running (it did not come back "
                "after a restart)"
            )
        return self._proc

    def _not_ready(self, what: str) -> InfrastructureError:
        """Why the server did not start: the port's holder when another process took it."""
        holder = port_holder(self._port)
        self.close()
        if holder:
            return InfrastructureError(
                f"{self.name} Redis {what}: port {self._port} is taken by {holder}; stop that "
                "process or run again (the harness picks a free port at start)"
            )
        return InfrastructureError(
            f"{self.name} Redis {what} on port {self._port}:\n{tail(self._log)}"
        )

    def wait_ready(self) -> None:
        proc = self._running()
        deadline = time.monotonic() + _READY_TIMEOUT
        while not self.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise self._not_ready("did not become ready")
            time.sleep(0.002)

    def _kill(self) -> None:
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None

    def close(self) -> None:
        with self._process_lock:
            self._kill()
            if self._owns_workdir:
                shutil.rmtree(self._workdir, ignore_errors=True)

    def restart(self) -> float:
        with self._process_lock:
            self._require(Fault.RESTART)
            begin = time.perf_counter()
            old = self._proc
            self._kill()
            if old is not None and is_alive(old.pid):
                raise InfrastructureError(f"{self.name} Redis pid {old.pid} survived SIGKILL")
            self._start()
            new = self._running()
            if old is not None and new.pid == old.pid:
                raise InfrastructureError(f"{self.name} Redis restart kept pid {old.pid}")
            seconds = time.perf_counter() - begin
            self._emit(EventKind.REDIS_RESTARTED, f"pid {new.pid}", duration=seconds)
            return seconds

    def stall(self) -> None:
        with self._process_lock:
            self._require(Fault.STALL)
            proc = self._running()
            proc.send_signal(signal.SIGSTOP)
            wait_until(
                lambda: process_state(proc.pid) == "T",
                timeout=2.0,
                what=f"{self.name} Redis to stop (SIGSTOP)",
            )
            self._emit(EventKind.REDIS_STALLED)

    def unstall(self) -> None:
        with self._process_lock:
            self._require(Fault.STALL)
            proc = self._running()
            proc.send_signal(signal.SIGCONT)
            wait_until(
                lambda: process_state(proc.pid) != "T",
                timeout=2.0,
                what=f"{self.name} Redis to continue (SIGCONT)",
            )
            self._emit(EventKind.REDIS_UNSTALLED)


class EmbeddedRedis(_LocalBackend):
    """fakeredis's TCP server in a child process (no CLIENT PAUSE, no eviction)."""

    name = "embedded"
    supported_faults = frozenset(
        {Fault.RESTART, Fault.STALL, Fault.FLUSH, Fault.EXPIRE, Fault.DELETE}
    )

    def _launch(self) -> None:
        self._proc = spawn_child(
            [sys.executable, "-m", "harness.cluster.redis._embedded", str(self._port)],
            log=self._log,
            stdout=subprocess.PIPE,
        )

    def wait_ready(self) -> None:
        stdout = self._running().stdout
        if stdout is None or stdout.closed:  # READY was read already
            return
        with selectors.DefaultSelector() as sel:
            sel.register(stdout, selectors.EVENT_READ)
            ready = sel.select(_READY_TIMEOUT)
        line = stdout.readline() if ready else b""
        stdout.close()
        if not line.startswith(b"READY"):
            raise self._not_ready("(fakeredis) did not start")

    def used_memory(self) -> int:
        raise UsageError(
            "the embedded Redis (fakeredis) has no INFO memory; use --redis server for eviction"
        )


class ServerRedis(_LocalBackend):
    """A real ``redis-server`` from PATH: every fault, including real eviction."""

    name = "server"
    supported_faults = frozenset(Fault)

    def __init__(self, workdir: Path | None, *, note: str = "", wait: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise UsageError(
                "--redis server: redis-server is not on PATH; install it "
                "(apt-get install redis-server) or use --redis embedded"
            )
        self._binary = binary
        super().__init__(workdir, note=note, wait=wait)

    def _launch(self) -> None:
        self._proc = spawn_child(
            [
                self._binary,
                "--port",
                str(self._port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
                "--dir",
                str(self._workdir),
            ],
            log=self._log,
        )
