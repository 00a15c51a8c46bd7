"""Start N workers of any ASGI app as separate OS processes, and hurt them on demand.

Each worker runs uvicorn (uvloop + httptools, no access log) on its own
loopback port with ``REDIS_URL`` and ``WORKER_ID`` set, inheriting the caller's
environment and working directory. A worker's port is reserved for the life of
the supervisor, so a restarted worker comes back on the same URL, and a dead
worker's port refuses connections at once.

Start methods:

- ``"fork"`` (default): a zygote process imports the app once and forks each
  worker from it, as gunicorn ``--preload`` does; restarts take tens of ms.
- ``"spawn"``: each worker is a fresh interpreter that imports the app itself
  (several hundred ms). Use it when the app is not fork-safe: it opens
  connections, starts threads or reads ``WORKER_ID`` at import time.

No process it starts outlives it (parent-death signal, a parent watchdog and
process groups). Normally you use it through :class:`harness.cluster.Cluster`.

>>> app = "tests.apps.whoami:app"
>>> with Supervisor(app, 2, redis_url=url, workdir=tmp) as sup:  # doctest: +SKIP
...     print([w.url for w in sup.workers])
...     sup.kill(1)
...     seconds = sup.restart(1)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Protocol

from harness._events import ClusterEvent, EventHook, EventKind, emit
from harness._proc import (
    LOOPBACK,
    is_alive,
    kill_group,
    process_state,
    reserve_port,
    spawn_child,
    tail,
    wait_until,
)
from harness._status_pipe import StatusPipe
from harness.errors import InfrastructureError, UsageError

StartMethod = Literal["fork", "spawn"]
START_METHODS: Final[tuple[StartMethod, ...]] = ("fork", "spawn")
_GRACE_SECONDS: Final = 5.0


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
    method: StartMethod

    @property
    def total_s(self) -> float:
        return self.stop_s + self.start_s


class WorkerListener(Protocol):
    """Told when a worker leaves or re-enters service (the router implements it)."""

    def worker_down(self, index: int) -> None: ...

    def worker_up(self, index: int) -> None: ...


class Supervisor:
    """N worker processes of one ASGI app; see the module docstring."""

    def __init__(
        self,
        app: str,
        workers: int,
        *,
        redis_url: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        start_method: StartMethod = "fork",
        on_event: EventHook | None = None,
        listener: WorkerListener | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        if start_method not in START_METHODS:
            raise UsageError(f"start method {start_method!r} is unknown; use 'fork' or 'spawn'")
        if workers < 1:
            raise UsageError(f"--workers {workers}: must be at least 1; pass --workers 4")
        self.app = app
        self.start_method: StartMethod = start_method
        self.on_event = on_event
        self.listener = listener
        self.restarts: list[RestartRecord] = []
        self._n = workers
        self._workdir = workdir
        self._cwd = cwd or os.getcwd()
        self._env = {**os.environ, **(env or {}), "REDIS_URL": redis_url}
        self._ready_timeout = ready_timeout
        self._lock = threading.RLock()
        self._placeholders = [reserve_port() for _ in range(workers)]
        self.ports = [int(s.getsockname()[1]) for s in self._placeholders]
        #: Unix sockets the workers also listen on: the router's cheaper way in.
        self.unix_paths = [str(workdir / f"worker-{i}.sock") for i in range(workers)]
        self._pids: list[int] = [0] * workers
        self._spawned: list[subprocess.Popen[bytes] | None] = [None] * workers
        self._killed: set[int] = set()
        self._status = StatusPipe()
        self._zygote: subprocess.Popen[bytes] | None = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def launch(self) -> None:
        """Begin importing the app in the worker parent (fork), without waiting.

        Lets a caller overlap the app's import with starting Redis and the
        router; :meth:`start` calls it if nobody did.
        """
        if self.start_method == "fork" and self._zygote is None:
            self._launch_zygote()

    def start(self) -> Supervisor:
        """Start every worker and wait until all accept connections."""
        try:
            if self.start_method == "fork":
                self.launch()
                self._await_zygote()
            for index in range(self._n):
                self._launch(index)
            for index in range(self._n):
                self._await_ready(index)
        except BaseException:
            self.close()
            raise
        self._started = True
        return self

    def __enter__(self) -> Supervisor:
        return self if self._started else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill every worker and the zygote; safe to call twice."""
        with self._lock:
            for proc in self._spawned:
                if proc is not None:
                    kill_group(proc)
            self._spawned = [None] * self._n
            if self._zygote is not None:
                # The workers share the zygote's process group: one killpg ends them all.
                kill_group(self._zygote)
                self._zygote = None
            for pid in self._pids:
                with contextlib.suppress(ProcessLookupError):
                    if pid and is_alive(pid):
                        os.kill(pid, signal.SIGKILL)
            self._status.close()
            for sock in self._placeholders:
                sock.close()
            self._placeholders = []

    # ---------------------------------------------------------------- inspection
    @property
    def workers(self) -> tuple[WorkerInfo, ...]:
        """One snapshot per worker, in index order."""
        infos = []
        for index in range(self._n):
            pid = self._pids[index]
            state = process_state(pid) if pid else None
            infos.append(
                WorkerInfo(
                    index=index,
                    url=f"http://{LOOPBACK}:{self.ports[index]}",
                    port=self.ports[index],
                    pid=pid,
                    alive=state not in (None, "Z", "X"),
                    stopped=state == "T",
                )
            )
        return tuple(infos)

    def pids(self) -> list[int]:
        """Every live process this supervisor started (zygote included)."""
        pids = [p for p in self._pids if p and is_alive(p)]
        if self._zygote is not None:
            pids.append(self._zygote.pid)
        return pids

    def log_path(self, index: int) -> Path:
        return self._workdir / f"worker-{index}.log"

    # ------------------------------------------------------------------- faults
    def kill(self, index: int) -> None:
        """SIGKILL worker ``index``, like a crash. The router finds out by itself."""
        with self._lock:
            pid = self._live_pid(index)
            os.kill(pid, signal.SIGKILL)
            self._wait_dead(pid, index)
            self._killed.add(index)
        emit(
            self.on_event, ClusterEvent(EventKind.WORKER_KILLED, worker=index, detail=f"pid {pid}")
        )

    def pause(self, index: int) -> None:
        """SIGSTOP worker ``index``: its connections hang until :meth:`resume`."""
        with self._lock:
            pid = self._live_pid(index)
            os.kill(pid, signal.SIGSTOP)
            wait_until(
                lambda: process_state(pid) == "T", timeout=2.0, what=f"worker {index} to stop"
            )
        emit(
            self.on_event, ClusterEvent(EventKind.WORKER_PAUSED, worker=index, detail=f"pid {pid}")
        )

    def resume(self, index: int) -> None:
        """SIGCONT a paused worker."""
        with self._lock:
            pid = self._live_pid(index)
            os.kill(pid, signal.SIGCONT)
            wait_until(
                lambda: process_state(pid) != "T", timeout=2.0, what=f"worker {index} to resume"
            )
        emit(
            self.on_event, ClusterEvent(EventKind.WORKER_RESUMED, worker=index, detail=f"pid {pid}")
        )

    def restart(self, index: int, *, graceful: bool = False) -> float:
        """Replace worker ``index`` by a new process; return seconds until it is ready.

        ``graceful=False`` (default) SIGKILLs the old process like a crash;
        ``graceful=True`` sends SIGTERM and lets uvicorn finish in-flight requests
        (up to 5 s). Either way the router takes the worker out of rotation first
        and back in once the new process accepts connections. Works on a killed
        or paused worker too.
        """
        self._check_index(index)
        with self._lock:
            record = self._restart_locked(index, graceful=graceful)
        self._emit_restarted(record)
        return record.total_s

    def _emit_restarted(self, record: RestartRecord) -> None:
        detail = f"pid {self._pids[record.index]}, start {record.start_s * 1000:.1f} ms"
        event = ClusterEvent(
            EventKind.WORKER_RESTARTED, worker=record.index, duration=record.total_s, detail=detail
        )
        emit(self.on_event, event)

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

    # ----------------------------------------------------------------- internals
    def _check_index(self, index: int) -> None:
        if not 0 <= index < self._n:
            raise UsageError(f"worker index {index} is out of range; use 0..{self._n - 1}")

    def _live_pid(self, index: int) -> int:
        self._check_index(index)
        pid = self._pids[index]
        if not pid or not is_alive(pid):
            raise UsageError(f"worker {index} is not running; restart it first")
        return pid

    def _wait_dead(self, pid: int, index: int) -> None:
        try:
            wait_until(lambda: not is_alive(pid), timeout=5.0, what=f"worker {index} to die")
        except InfrastructureError as exc:
            raise InfrastructureError(f"worker {index} (pid {pid}) survived SIGKILL") from exc

    def _stop(self, index: int, *, graceful: bool) -> None:
        pid = self._pids[index]
        if pid and is_alive(pid):
            if graceful and process_state(pid) != "T":
                os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(InfrastructureError):
                    wait_until(
                        lambda: not is_alive(pid), timeout=_GRACE_SECONDS, what="graceful exit"
                    )
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
            self._wait_dead(pid, index)
        proc = self._spawned[index]
        if proc is not None:
            kill_group(proc)
            self._spawned[index] = None

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
            raise InfrastructureError(f"worker {index} restart kept pid {old}")
        record = RestartRecord(index, stopped - begin, ready - stopped, self.start_method)
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
        for index in range(self._n):
            self.restarts.append(
                RestartRecord(index, stopped - begin, ready - stopped, self.start_method)
            )
        return tuple(ready - begin for _ in range(self._n))

    def _launch_zygote(self) -> None:
        self._zygote = spawn_child(
            [
                sys.executable,
                "-m",
                "harness._zygote",
                self.app,
                str(self._status.write_fd),
                str(self._workdir),
            ],
            log=self._workdir / "zygote.log",
            env=self._env,
            cwd=self._cwd,
            stdin=subprocess.PIPE,
            pass_fds=[self._status.write_fd],
        )

    def _await_zygote(self) -> None:
        zygote = self._zygote
        assert zygote is not None
        if not self._status.wait_for(
            lambda: self._status.zygote is not None or zygote.poll() is not None,
            self._ready_timeout,
        ):
            raise InfrastructureError(
                f"app {self.app} did not finish importing within {self._ready_timeout:.0f} s"
            )
        outcome = self._status.zygote
        if outcome == "ready":
            return
        if outcome is not None and outcome.startswith(("ModuleNotFoundError", "AttributeError")):
            raise UsageError(f"--app {self.app}: {outcome}; pass --app MODULE:ATTR of an ASGI app")
        raise InfrastructureError(
            f"app {self.app} failed to import in the worker parent:\n"
            f"{tail(self._workdir / 'zygote.log')}"
        )

    def _launch(self, index: int) -> None:
        self._status.forget(index)
        self._pids[index] = 0
        self._killed.discard(index)
        port = self.ports[index]
        if self.start_method == "fork":
            zygote = self._zygote
            if zygote is None or zygote.poll() is not None or zygote.stdin is None:
                raise InfrastructureError(
                    f"the worker parent (zygote) is gone:\n{tail(self._workdir / 'zygote.log')}"
                )
            zygote.stdin.write(f"fork {index} {port} {self.unix_paths[index]}\n".encode())
            zygote.stdin.flush()
            return
        self._spawned[index] = spawn_child(
            [
                sys.executable,
                "-m",
                "harness._worker",
                self.app,
                str(index),
                str(port),
                str(self._status.write_fd),
                self.unix_paths[index],
            ],
            log=self.log_path(index),
            env=self._env,
            cwd=self._cwd,
            pass_fds=[self._status.write_fd],
        )
        self._pids[index] = self._spawned[index].pid  # type: ignore[union-attr]

    def _await_ready(self, index: int) -> None:
        def done() -> bool:
            if self._status.ready_pid(index) is not None:
                return True
            pid = self._pids[index] or self._status.forked_pid(index) or 0
            return bool(pid) and not is_alive(pid)

        deadline = time.monotonic() + self._ready_timeout
        while not self._status.wait_for(done, 0.05):
            if self._zygote is not None and self._zygote.poll() is not None:
                break
            if time.monotonic() > deadline:
                break
        pid = self._status.ready_pid(index)
        if pid is None:
            raise InfrastructureError(
                f"worker {index} of {self.app} did not start (log {self.log_path(index)}):\n"
                f"{tail(self.log_path(index))}"
            )
        self._pids[index] = pid
        if self.listener is not None:
            self.listener.worker_up(index)
