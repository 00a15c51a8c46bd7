"""Redis processes the cluster starts and owns: fakeredis (``embedded``) and ``redis-server``.

Public names are re-exported by :mod:`harness.redis_backends`; use that module.
"""

from __future__ import annotations

import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from harness._events import EventKind
from harness._proc import (
    LOOPBACK,
    free_port,
    is_alive,
    kill_group,
    process_state,
    spawn_child,
    tail,
    wait_until,
)
from harness._redis_base import Fault, RedisBackend
from harness.errors import InfrastructureError, UsageError

_READY_TIMEOUT: Final = 10.0


class _LocalBackend(RedisBackend):
    """A Redis process we started and own: every fault is allowed."""

    def __init__(self, workdir: Path | None, *, note: str = "", wait: bool = True) -> None:
        self._owns_workdir = workdir is None
        self._workdir = workdir or Path(tempfile.mkdtemp(prefix="scanproof-redis-"))
        self._port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
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

    def wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + _READY_TIMEOUT
        while not self.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                message = (
                    f"{self.name} Redis on port {self._port} did not become ready:\n"
                    f"{tail(self._log)}"
                )
                self.close()
                raise InfrastructureError(message)
            time.sleep(0.002)

    def _kill(self) -> None:
        if self._proc is not None:
            kill_group(self._proc)
            self._proc = None

    def close(self) -> None:
        self._kill()
        if self._owns_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def restart(self) -> float:
        self._require(Fault.RESTART)
        begin = time.perf_counter()
        old = self._proc
        self._kill()
        if old is not None and is_alive(old.pid):
            raise InfrastructureError(f"{self.name} Redis pid {old.pid} survived SIGKILL")
        self._start()
        assert self._proc is not None
        assert old is not None
        if self._proc.pid == old.pid:
            raise InfrastructureError(f"{self.name} Redis restart kept pid {old.pid}")
        seconds = time.perf_counter() - begin
        self._emit(EventKind.REDIS_RESTARTED, f"pid {self._proc.pid}", duration=seconds)
        return seconds

    def stall(self) -> None:
        self._require(Fault.STALL)
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        wait_until(
            lambda: process_state(self._proc.pid) == "T" if self._proc else True,
            timeout=2.0,
            what=f"{self.name} Redis to stop (SIGSTOP)",
        )
        self._emit(EventKind.REDIS_STALLED)

    def unstall(self) -> None:
        self._require(Fault.STALL)
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)
        wait_until(
            lambda: process_state(self._proc.pid) != "T" if self._proc else True,
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
            [sys.executable, "-m", "harness._embedded_redis", str(self._port)],
            log=self._log,
            stdout=subprocess.PIPE,
        )

    def wait_ready(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            ready = sel.select(_READY_TIMEOUT)
        line = self._proc.stdout.readline() if ready else b""
        self._proc.stdout.close()
        if not line.startswith(b"READY"):
            message = f"embedded Redis (fakeredis) did not start on port {self._port}:\n"
            message += tail(self._log)
            self.close()
            raise InfrastructureError(message)

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
