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
from pathlib import Path
from typing import Final, Literal, Protocol

from harness.cluster._logs import DEFAULT_MAX_BYTES, LogFiles
from harness.cluster._proc import (
    is_alive,
    kill_group,
    process_state,
    reserve_port,
    spawn_child,
    wait_until,
)
from harness.cluster._restarts import RestartRecord as RestartRecord
from harness.cluster._restarts import Restarts
from harness.cluster._restarts import WorkerInfo as WorkerInfo
from harness.cluster._status_pipe import StatusPipe
from harness.cluster.events import ClusterEvent, EventHook, EventKind, emit
from harness.errors import InfrastructureError, UsageError

StartMethod = Literal["fork", "spawn"]
START_METHODS: Final[tuple[StartMethod, ...]] = ("fork", "spawn")
_GRACE_SECONDS: Final = 5.0


class WorkerListener(Protocol):
    """Told when a worker leaves or re-enters service (the router implements it)."""

    def worker_down(self, index: int) -> None: ...

    def worker_up(self, index: int) -> None: ...


class WorkerSet(Protocol):
    """What the cluster, the router and the nemesis need of the workers.

    :class:`Supervisor` (an ASGI app) and
    :class:`harness.cluster.command.CommandSupervisor` (any command) both have it.
    """

    listener: WorkerListener | None
    on_event: EventHook | None
    restarts: list[RestartRecord]
    incarnations: list[int]

    @property
    def workers(self) -> tuple[WorkerInfo, ...]: ...

    @property
    def log_dir(self) -> Path: ...

    def pids(self) -> list[int]: ...

    def log_path(self, index: int) -> Path: ...

    def log_tail(self, index: int, lines: int = 15) -> str: ...

    def launch(self) -> None: ...

    def start(self) -> WorkerSet: ...

    def close(self) -> None: ...

    def kill(self, index: int) -> None: ...

    def pause(self, index: int) -> None: ...

    def resume(self, index: int) -> None: ...

    def restart(self, index: int, *, graceful: bool = False) -> float: ...

    def deploy(self, *, rolling: bool = True, graceful: bool = True) -> tuple[float, ...]: ...


class Supervisor(Restarts):
    """N worker processes of one ASGI app; see the module docstring."""

    def __init__(
        self,
        app: str,
        workers: int,
        *,
        redis_url: str,
        workdir: Path,
        log_dir: Path | None = None,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
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
        # Unbuffered output, so the last lines before a crash (SIGKILL) reach the log.
        self._env.setdefault("PYTHONUNBUFFERED", "1")
        self._ready_timeout = ready_timeout
        self._lock = threading.RLock()
        self._placeholders = [reserve_port() for _ in range(workers)]
        self.ports = [int(s.getsockname()[1]) for s in self._placeholders]
        #: Unix sockets the workers also listen on: the router's cheaper way in.
        self.unix_paths = [str(workdir / f"worker-{i}.sock") for i in range(workers)]
        self._pids: list[int] = [0] * workers
        #: How many processes each worker index has had (1 after start, +1 per restart).
        self.incarnations: list[int] = [0] * workers
        # Logs: <log_dir>/<index>.log per worker (every incarnation appends, after a
        # header line) and zygote.log, appended by the processes themselves; see _logs.
        self._logs = LogFiles(log_dir=log_dir or workdir, max_bytes=log_max_bytes)
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

    def _before_workers(self) -> None:
        if self.start_method == "fork":
            self.launch()
            self._await_zygote()

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
            self._logs.close()  # after every writer is gone: bound the files once more
            for sock in self._placeholders:
                sock.close()
            self._placeholders = []

    # ---------------------------------------------------------------- inspection
    def pids(self) -> list[int]:
        """Every live process this supervisor started (zygote included)."""
        pids = [p for p in self._pids if p and is_alive(p)]
        if self._zygote is not None:
            pids.append(self._zygote.pid)
        return pids

    def _restart_method(self) -> str:
        return self.start_method

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

    # ----------------------------------------------------------------- internals
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

    def _launch_zygote(self) -> None:
        self._zygote = spawn_child(
            [
                sys.executable,
                "-m",
                "harness.cluster._zygote",
                self.app,
                str(self._status.write_fd),
                str(self._logs.log_dir),
            ],
            log=self._logs.channel("zygote"),
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
            f"app {self.app} failed to import in the worker parent "
            f"(log {self._logs.path('zygote')}):\n{self._logs.tail('zygote')}"
        )

    def _launch(self, index: int) -> None:
        self._status.forget(index)
        self._pids[index] = 0
        self._killed.discard(index)
        self.incarnations[index] += 1
        incarnation = self.incarnations[index]
        self._logs.channel(str(index))  # the zygote's forked worker opens it by name
        port = self.ports[index]
        if self.start_method == "fork":
            zygote = self._zygote
            if zygote is None or zygote.poll() is not None or zygote.stdin is None:
                raise InfrastructureError(
                    f"the worker parent (zygote) is gone (exit code "
                    f"{zygote.poll() if zygote is not None else 'none'}, log "
                    f"{self._logs.path('zygote')}):\n{self._logs.tail('zygote')}"
                )
            zygote.stdin.write(
                f"fork {index} {port} {self.unix_paths[index]} {incarnation}\n".encode()
            )
            zygote.stdin.flush()
            return
        self._spawned[index] = spawn_child(
            [
                sys.executable,
                "-m",
                "harness.cluster._worker",
                self.app,
                str(index),
                str(port),
                str(self._status.write_fd),
                self.unix_paths[index],
                str(incarnation),
            ],
            log=self._logs.channel(str(index)),
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
                f"{self.log_tail(index)}"
            )
        self._pids[index] = pid
        if self.listener is not None:
            self.listener.worker_up(index)
