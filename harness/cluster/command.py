"""Command workers: N copies of any command (any language, gunicorn as in production).

Each worker is ``/bin/sh -c COMMAND`` with the placeholders ``{port}``, ``{worker}``
and ``{redis_url}`` filled in, run with the caller's environment plus ``env`` plus
``PORT``, ``WORKER_ID`` and ``REDIS_URL`` (with links: the worker's own link), in the
caller's working directory. Each has its own loopback port, picked outside the kernel's
ephemeral range, that a restart reuses. A worker is ready when its port accepts a TCP
connection or, with ``ready_path``, when ``GET ready_path`` answers below 500.

A worker is a **process group**: a gunicorn master and its forked workers, or a
shell and its jobs, are one worker. ``kill`` SIGKILLs the group, ``pause``/``resume``
SIGSTOP/SIGCONT it, ``restart`` stops it (graceful: SIGTERM, up to 5 s, then SIGKILL)
and starts the command again on the same port. Every worker is watched by a keeper
(:mod:`harness.cluster._keeper`, in a group of its own, so a pause never stops it) that
takes the whole group and every descendant down when the command's leading process
exits or scanproof ends, however it ends (SIGKILL included).

Its public surface is :class:`harness.cluster.supervisor.Supervisor`'s, so the cluster,
the router and the nemesis use either one. Normally you use it through
:meth:`harness.cluster.Cluster.start` with ``cmd=``.

>>> cmd = "node server.js --port {port}"
>>> with CommandSupervisor(cmd, 2, redis_url=url, workdir=tmp) as sup:  # doctest: +SKIP
...     print([w.url for w in sup.workers])
...     sup.pause(1)      # the whole process group stops
...     sup.restart(1)    # same port, new pids
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from harness.cluster import _keeper
from harness.cluster._logs import DEFAULT_MAX_BYTES, LogFiles, incarnation_header
from harness.cluster._proc import (
    LOOPBACK,
    free_port,
    is_alive,
    kill_group,
    process_state,
    read_line,
    spawn_child,
    wait_until,
)
from harness.cluster._restarts import Restarts
from harness.cluster.events import ClusterEvent, EventHook, EventKind, emit
from harness.cluster.supervisor import RestartRecord, WorkerListener
from harness.errors import InfrastructureError, UsageError

_GRACE_SECONDS: Final = 5.0
_PLACEHOLDERS: Final = ("port", "worker", "redis_url")
_NOT_FOUND: Final = 127  # the shell's exit code for "command not found"
_NOT_EXECUTABLE: Final = 126


def render(command: str, *, port: int, worker: int, redis_url: str, flag: str = "--cmd") -> str:
    """``command`` with its placeholders filled in; UsageError naming an unknown one.

    >>> render("app -b 127.0.0.1:{port} --id {worker}", port=8001, worker=2, redis_url="")
    'app -b 127.0.0.1:8001 --id 2'
    >>> render("x {h}", port=1, worker=0, redis_url="")
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: --cmd 'x {h}': no placeholder {h}; use {port}, {worker}, {redis_url}
    """
    values = {"port": port, "worker": worker, "redis_url": redis_url}
    try:
        return command.format_map(values)
    except KeyError as exc:
        raise UsageError(
            f"{flag} {command!r}: no placeholder {{{exc.args[0]}}}; use {{port}}, "
            "{worker}, {redis_url}"
        ) from None
    except (ValueError, IndexError) as exc:
        raise UsageError(
            f"{flag} {command!r}: {exc}; placeholders are {{port}}, {{worker}} and "
            "{redis_url} (double braces {{ }} for literal ones)"
        ) from None


def check_command(
    command: str, ready_path: str | None = None, *, path: str | None = None, flag: str = "--cmd"
) -> None:
    """Check ``--cmd`` and ``--ready-path`` before anything starts (UsageError, one line).

    A command whose first word is a plain name not on ``path`` (default ``$PATH``) is
    refused here; anything the shell must judge (a path, ``cd x && ...``) is tried.

    >>> check_command("node server.js", "health")
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: --ready-path 'health': must start with '/', e.g. --ready-path /health
    """
    if not command.strip():
        raise UsageError(
            f"{flag} '': give the command that starts one worker, e.g. {flag} 'node s.js'"
        )
    render(command, port=1, worker=0, redis_url="redis://x", flag=flag)
    if ready_path is not None and not ready_path.startswith("/"):
        raise UsageError(
            f"--ready-path {ready_path!r}: must start with '/', e.g. --ready-path /health"
        )
    try:
        first = shlex.split(command)[0]
    except (ValueError, IndexError):
        return  # the shell has the last word on quoting
    if (
        _PLAIN_NAME.match(first)
        and first not in _SHELL_WORDS
        and shutil.which(first, path=path) is None
    ):
        raise UsageError(
            f"{flag} {command!r}: {first!r} is not on PATH; install it or give its full path"
        )


_PLAIN_NAME: Final = re.compile(r"^[A-Za-z0-9_][\w.+-]*$")
_SHELL_WORDS: Final = frozenset(
    {
        *("cd", "exec", "export", "set", "ulimit", "umask", "source", "trap", "eval", "true"),
        *("false", "if", "for", "while", "until", "case", "test", "command", "builtin", "time"),
    }
)


class CommandSupervisor(Restarts):
    """N process groups of one command; see the module docstring."""

    #: The option that gave the command, in messages; what one copy is called.
    option: str = "--cmd"
    noun: str = "worker"

    def __init__(
        self,
        command: str,
        workers: int,
        *,
        redis_url: str,
        workdir: Path,
        worker_redis_urls: Sequence[str] = (),
        ready_path: str | None = None,
        log_dir: Path | None = None,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_event: EventHook | None = None,
        listener: WorkerListener | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        if workers < 1:
            raise UsageError(f"--workers {workers}: must be at least 1; pass --workers 4")
        self._base_env = {**os.environ, **(env or {})}
        self._base_env.setdefault("PYTHONUNBUFFERED", "1")
        check_command(command, ready_path, path=self._base_env.get("PATH"), flag=self.option)
        self.command = command
        self.ready_path = ready_path
        self.on_event = on_event
        self.listener = listener
        self.restarts: list[RestartRecord] = []
        self._n = workers
        self._workdir = workdir
        self._cwd = cwd or os.getcwd()
        self._redis_urls = [
            worker_redis_urls[i] if i < len(worker_redis_urls) else redis_url
            for i in range(workers)
        ]
        self._ready_timeout = ready_timeout
        self._lock = threading.RLock()
        self.ports = [free_port() for _ in range(workers)]
        self._pids: list[int] = [0] * workers
        #: How many processes each worker index has had (1 after start, +1 per restart).
        self.incarnations: list[int] = [0] * workers
        self._logs = LogFiles(log_dir=log_dir or workdir, max_bytes=log_max_bytes)
        self._keepers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def launch(self) -> None:
        """Nothing to preload for a command: each worker starts in :meth:`start`."""

    def close(self) -> None:
        """Kill every worker's process group and its keeper; safe to call twice."""
        with self._lock:
            for index in range(self._n):
                self._stop(index, graceful=False)
            self._logs.close()

    # ---------------------------------------------------------------- inspection
    @property
    def upstreams(self) -> list[str]:
        """The router's view of the workers: ``127.0.0.1:<port>`` each."""
        return [f"{LOOPBACK}:{port}" for port in self.ports]

    def pids(self) -> list[int]:
        """Every live process this supervisor started: keepers, commands and theirs."""
        found: list[int] = []
        for keeper in self._keepers:
            if keeper is not None and is_alive(keeper.pid):
                found.append(keeper.pid)
                found.extend(p for p in _keeper.descendants(keeper.pid) if is_alive(p))
        return found

    def group(self, index: int) -> list[int]:
        """The live processes of worker ``index``'s process group (leader first)."""
        pgid = self._pids[index]
        return _group_members(pgid) if pgid else []

    def _restart_method(self) -> str:
        return "command"

    # ------------------------------------------------------------------- faults
    def kill(self, index: int) -> None:
        """SIGKILL worker ``index``'s whole process group, like a crash."""
        with self._lock:
            pid = self._live_pid(index)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self._wait_dead(pid, index)
        emit(
            self.on_event, ClusterEvent(EventKind.WORKER_KILLED, worker=index, detail=f"pid {pid}")
        )

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        os.killpg(pid, sig)  # the whole group: a gunicorn master and its workers

    def _stopped(self, pid: int) -> bool:
        return all(process_state(p) == "T" for p in _group_members(pid))

    # ----------------------------------------------------------------- internals
    def _stop(self, index: int, *, graceful: bool) -> None:
        pid = self._pids[index]
        if pid and is_alive(pid):
            if graceful and process_state(pid) != "T":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                with contextlib.suppress(InfrastructureError):
                    wait_until(
                        lambda: not is_alive(pid), timeout=_GRACE_SECONDS, what="graceful exit"
                    )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self._wait_dead(pid, index)
        keeper = self._keepers[index]
        if keeper is not None:
            # The keeper sees its leader gone, kills what is left and exits; SIGTERM asks
            # the same of a keeper whose command still runs. kill_group is the backstop.
            with contextlib.suppress(ProcessLookupError):
                keeper.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                keeper.wait(_GRACE_SECONDS)
            kill_group(keeper)
            self._keepers[index] = None

    def _env(self, index: int) -> dict[str, str]:
        return {
            **self._base_env,
            "PORT": str(self.ports[index]),
            "WORKER_ID": str(index),
            "REDIS_URL": self._redis_urls[index],
        }

    def _launch(self, index: int) -> None:
        self._pids[index] = 0
        self.incarnations[index] += 1
        port = self.ports[index]
        command = render(
            self.command,
            port=port,
            worker=index,
            redis_url=self._redis_urls[index],
            flag=self.option,
        )
        header = incarnation_header(index, self.incarnations[index], 0).replace(
            "pid 0,", "pid {pid},", 1
        )
        keeper = spawn_child(
            # -I: only the standard library; nothing in the user's directory can shadow it
            [sys.executable, "-I", _keeper.__file__, str(os.getpid()), header, command],
            log=self._logs.channel(self._log_name(index)),
            env=self._env(index),
            cwd=self._cwd,
            stdout=subprocess.PIPE,
        )
        self._keepers[index] = keeper
        assert keeper.stdout is not None
        line = read_line(keeper.stdout, self._ready_timeout)
        if not line.startswith("pid "):
            raise InfrastructureError(
                f"{self.noun} {index}: the keeper of {self.option} {self.command!r} did not start "
                f"(log {self.log_path(index)}):\n{self.log_tail(index)}"
            )
        self._pids[index] = int(line.split()[1])

    def _is_ready(self, index: int) -> bool:
        port = self.ports[index]
        if self.ready_path is None:
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.5):
                    return True
            except OSError:
                return False
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2.0)
        try:
            conn.request("GET", self.ready_path)
            return conn.getresponse().status < 500
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _await_ready(self, index: int) -> None:
        keeper = self._keepers[index]
        assert keeper is not None
        deadline = time.monotonic() + self._ready_timeout
        while not self._is_ready(index):
            code = keeper.poll()
            if code is not None:
                self._exited(index, code)
            if time.monotonic() > deadline:
                raise InfrastructureError(
                    f"{self._not_ready(index)} (log {self.log_path(index)}):\n"
                    f"{self.log_tail(index)}"
                )
            time.sleep(0.02)
        if self.listener is not None:
            self.listener.worker_up(index)

    def _not_ready(self, index: int) -> str:
        return (
            f"worker {index} (--cmd {self.command!r}) was not ready on port "
            f"{self.ports[index]} within {self._ready_timeout:g} s"
            f"{' (GET ' + self.ready_path + ')' if self.ready_path else ''}"
        )

    def _exited(self, index: int, code: int) -> None:
        tail = self.log_tail(index)
        if code in (_NOT_FOUND, _NOT_EXECUTABLE) and ("not found" in tail or "denied" in tail):
            what = "was not found" if code == _NOT_FOUND else "cannot be executed"
            raise UsageError(
                f"{self.option} {self.command!r}: the command {what} "
                f"({tail.splitlines()[-1].strip()}); "
                "install it, put it on PATH or give its full path"
            )
        raise InfrastructureError(
            f"{self.noun} {index} ({self.option} {self.command!r}) exited with code {code} before "
            "it was "
            f"ready (log {self.log_path(index)}):\n{tail}"
        )


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (``pgid`` first when alive)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return sorted(members, key=lambda p: p != pgid)
