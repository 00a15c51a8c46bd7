"""What every kind of worker set shares: restarts, rolling or all-at-once deploys, and
the checks and events around them. Private to :mod:`harness.cluster`.

:class:`~harness.cluster.supervisor.Supervisor` (ASGI workers) and
:class:`~harness.cluster.command.CommandSupervisor` (any command; job workers too)
differ in how a worker is started, stopped and known to be ready; they implement
``_stop``, ``_launch``, ``_await_ready``, ``_restart_method`` (and ``_before_workers``)
and inherit the rest, start included
(pause and resume signal through ``_signal``: one process, or a command's whole group).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from harness.cluster._proc import LOOPBACK, is_alive, process_state, wait_until
from harness.cluster.events import ClusterEvent, EventHook, EventKind, emit
from harness.errors import InfrastructureError, UsageError

if TYPE_CHECKING:
    from harness.cluster._logs import LogFiles
    from harness.cluster.supervisor import WorkerListener


@dataclass(frozen=True)
class WorkerInfo:
    """A snapshot of one worker: ``alive`` is False once killed (until restarted)."""

    index: int
    url: str
    port: int
    pid: int
    alive: bool
    stopped: bool


@dataclass(frozen=True)
class RestartRecord:
    """One measured restart: ``stop_s`` to get rid of the old process, ``start_s`` to ready."""

    index: int
    stop_s: float
    start_s: float
    method: str  # the start method: "fork", "spawn" or "command"

    @property
    def total_s(self) -> float:
        return self.stop_s + self.start_s


class Restarts:
    """The restart and deploy machinery of N workers (see the module docstring)."""

    noun: str = "worker"  # what one copy is called in messages
    on_event: EventHook | None
    listener: WorkerListener | None
    restarts: list[RestartRecord]
    _n: int
    _lock: threading.RLock
    _started: bool
    _pids: list[int]
    _logs: LogFiles
    ports: list[int]

    # ---------------------------------------------------------- what subclasses do
    def _stop(self, index: int, *, graceful: bool) -> None:
        raise NotImplementedError

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        """Send ``sig`` to worker ``pid`` (a command worker: to its whole group)."""
        os.kill(pid, sig)

    def _stopped(self, pid: int) -> bool:
        """Whether worker ``pid`` is stopped (a command worker: every process of it)."""
        return process_state(pid) == "T"

    def _launch(self, index: int) -> None:
        raise NotImplementedError

    def _await_ready(self, index: int) -> None:
        raise NotImplementedError

    def _restart_method(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -------------------------------------------------------------- inspection
    @property
    def workers(self) -> tuple[WorkerInfo, ...]:
        """One snapshot per worker, in index order (``pid``: its leading process)."""
        infos = []
        for index in range(self._n):
            pid = self._pids[index]
            state = process_state(pid) if pid else None
            url, port = self._address(index)
            infos.append(
                WorkerInfo(
                    index=index,
                    url=url,
                    port=port,
                    pid=pid,
                    alive=state not in (None, "Z", "X"),
                    stopped=state == "T",
                )
            )
        return tuple(infos)

    def _address(self, index: int) -> tuple[str, int]:
        """Worker ``index``'s URL and port (on the loopback address)."""
        port: int = self.ports[index]
        return f"http://{LOOPBACK}:{port}", port

    # -------------------------------------------------------------------- logs
    @property
    def log_dir(self) -> Path:
        """Where the logs are: ``<index>.log`` per worker (and the subclass's own)."""
        return self._logs.log_dir

    def log_path(self, index: int) -> Path:
        """Worker ``index``'s log: every incarnation's stdout and stderr, in order."""
        return self._logs.path(self._log_name(index))

    def log_tail(self, index: int, lines: int = 15) -> str:
        """The last lines of worker ``index``'s log, everything it wrote so far included."""
        return self._logs.tail(self._log_name(index), lines)

    def _log_name(self, index: int) -> str:
        return str(index)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- restarts
    def restart(self, index: int, *, graceful: bool = False) -> float:
        """Replace worker ``index`` by a new process; return seconds until it is ready.

        ``graceful=False`` (default) SIGKILLs the old process like a crash;
        ``graceful=True`` sends SIGTERM and lets it finish in-flight requests (up to
        5 s). Either way the router takes the worker out of rotation first and back in
        once the new process is ready. Works on a killed or paused worker too.
        """
        self._check_index(index)
        with self._lock:
            record = self._restart_locked(index, graceful=graceful)
        self._emit_restarted(record)
        return record.total_s

    def deploy(self, *, rolling: bool = True, graceful: bool = True) -> tuple[float, ...]:
        """Restart every worker, one at a time (``rolling``) or all at once.

        Returns each worker's restart-to-ready seconds, in index order. Reports
        DEPLOY_STARTED, one WORKER_RESTARTED per worker, then DEPLOY_FINISHED.
        """
        emit(self.on_event, ClusterEvent(EventKind.DEPLOY_STARTED, detail=f"rolling={rolling}"))
        begin = time.perf_counter()
        with self._lock:
            if rolling:
                records = []
                for index in range(self._n):
                    records.append(self._restart_locked(index, graceful=graceful))
                    self._emit_restarted(records[-1])
                times = tuple(r.total_s for r in records)
            else:
                times = self._restart_all_locked(graceful=graceful)
                for record in self.restarts[-self._n :]:
                    self._emit_restarted(record)
        emit(
            self.on_event,
            ClusterEvent(
                EventKind.DEPLOY_FINISHED,
                duration=time.perf_counter() - begin,
                detail=f"rolling={rolling}",
            ),
        )
        return times

    def _emit_restarted(self, record: RestartRecord) -> None:
        detail = f"pid {self._pids[record.index]}, start {record.start_s * 1000:.1f} ms"
        event = ClusterEvent(
            EventKind.WORKER_RESTARTED, worker=record.index, duration=record.total_s, detail=detail
        )
        emit(self.on_event, event)

    def _before_workers(self) -> None:
        """What must run before the first worker starts (the ASGI zygote); nothing here."""

    def start(self) -> Self:
        """Start every worker and wait until all are ready; on any failure, close."""
        try:
            self._before_workers()
            for index in range(self._n):
                self._launch(index)
            for index in range(self._n):
                self._await_ready(index)
        except BaseException:
            self.close()
            raise
        self._started = True
        return self

    def __enter__(self) -> Self:
        return self if self._started else self.start()

    # ------------------------------------------------------------------- faults
    def pause(self, index: int) -> None:
        """SIGSTOP worker ``index``: its connections hang until :meth:`resume`."""
        with self._lock:
            pid = self._live_pid(index)
            self._signal(pid, signal.SIGSTOP)
            wait_until(
                lambda: self._stopped(pid),
                timeout=2.0,
                what=f"{self.noun} {index} to stop",
                interval=0.01,
            )
        emit(
            self.on_event, ClusterEvent(EventKind.WORKER_PAUSED, worker=index, detail=f"pid {pid}")
        )

    def resume(self, index: int) -> None:
        """SIGCONT a paused worker."""
        with self._lock:
            pid = self._live_pid(index)
            self._signal(pid, signal.SIGCONT)
            wait_until(
                lambda: process_state(pid) != "T",
                timeout=2.0,
                what=f"{self.noun} {index} to resume",
            )
        emit(
            self.on_event, ClusterEvent(EventKind.WORKER_RESUMED, worker=index, detail=f"pid {pid}")
        )

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self._n:
            raise UsageError(f"{self.noun} index {index} is out of range; use 0..{self._n - 1}")

    def _live_pid(self, index: int) -> int:
        self._check_index(index)
        pid = self._pids[index]
        if not pid or not is_alive(pid):
            raise UsageError(f"{self.noun} {index} is not running; restart it first")
        return pid

    def _wait_dead(self, pid: int, index: int) -> None:
        try:
            wait_until(lambda: not is_alive(pid), timeout=5.0, what=f"{self.noun} {index} to die")
        except InfrastructureError as exc:
            raise InfrastructureError(f"{self.noun} {index} (pid {pid}) survived SIGKILL") from exc

    def _restart_locked(self, index: int, *, graceful: bool) -> RestartRecord:
        old = self._pids[index]
        if self.listener is not None:
            self.listener.worker_down(index)
        begin = time.perf_counter()
        self._stop(index, graceful=graceful)
        stopped = time.perf_counter()
        self._launch(index)
        self._await_ready(index)
        ready = time.perf_counter()
        if self._pids[index] == old:
            raise InfrastructureError(f"{self.noun} {index} restart kept pid {old}")
        record = RestartRecord(index, stopped - begin, ready - stopped, self._restart_method())
        self.restarts.append(record)
        return record

    def _restart_all_locked(self, *, graceful: bool) -> tuple[float, ...]:
        begin = time.perf_counter()
        for index in range(self._n):
            if self.listener is not None:
                self.listener.worker_down(index)
        for index in range(self._n):
            self._stop(index, graceful=graceful)
        stopped = time.perf_counter()
        for index in range(self._n):
            self._launch(index)
        for index in range(self._n):
            self._await_ready(index)
        ready = time.perf_counter()
        method = self._restart_method()
        for index in range(self._n):
            self.restarts.append(RestartRecord(index, stopped - begin, ready - stopped, method))
        return tuple(ready - begin for _ in range(self._n))
