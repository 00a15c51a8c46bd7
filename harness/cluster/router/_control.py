"""A per-request round-robin HTTP reverse proxy in front of the workers.

Connection-level balancing (gunicorn's shared socket, a TCP proxy) keeps a
client's keep-alive connection on one worker, which hides exactly the bugs
scanproof hunts: a user's consecutive requests landing on different
processes. This router picks a worker for every request:

- policies: ``round-robin`` (default: 0, 1, 2, 3, 0, ... over live workers),
  ``random``, ``sticky`` (by the ``Authorization`` header: one identity, one
  worker while it is up);
- every response carries ``X-Scanproof-Worker: <index>``;
- a worker whose connect fails is taken out of rotation at once and the request
  gets a quick ``502`` with a JSON body
  ``{"error": "worker_unavailable", "worker": 2, "detail": ...}``; a worker that
  drops a request it was sent gives ``502`` ``worker_closed`` (it may have run),
  except that a ``GET``, ``HEAD`` or ``OPTIONS`` that met the close of a pooled
  keep-alive connection is sent again once (see docs/cluster.md); the router's
  own answers carry ``X-Scanproof-Router: local``;
- a failed worker returns to rotation when the supervisor says it is back
  (:meth:`Router.worker_up`) or when its port accepts connections again;
- keep-alive connection pools to the workers; it runs in its own process.

>>> with Router.start(["127.0.0.1:8001", "127.0.0.1:8002"]) as router:  # doctest: +SKIP
...     print(router.url)
...     router.worker_down(1)   # drain before a restart
...     router.worker_up(1)
http://127.0.0.1:38211
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from harness.cluster._proc import LOOPBACK, kill_group, read_line, spawn_child, tail
from harness.cluster.router._pool import POLICIES as _POLICIES
from harness.errors import InfrastructureError, UsageError

POLICIES: Final[tuple[str, ...]] = _POLICIES
"""The routing policies: ``round-robin``, ``random``, ``sticky``."""
_REPLY_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class WorkerRoute:
    """The router's view of one worker: in rotation or not, requests sent, 502s given."""

    worker: int
    up: bool
    requests: int
    errors: int


def check_policy(policy: str) -> str:
    """Return ``policy`` if known, else UsageError naming the choices."""
    if policy not in POLICIES:
        raise UsageError(f"--router {policy!r}: unknown policy; use one of {', '.join(POLICIES)}")
    return policy


class Router:
    """Handle on a running router process; use :meth:`start`, close when done."""

    def __init__(
        self, proc: subprocess.Popen[bytes], log: Path, *, owned_dir: Path | None = None
    ) -> None:
        self._proc = proc
        self.port = 0
        self.url = ""
        self._log = log
        self._owned_dir = owned_dir  # a temporary directory of ours, removed by close()
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls,
        workers: Sequence[str],
        *,
        policy: str = "round-robin",
        workdir: Path | None = None,
        log: Path | None = None,
    ) -> Router:
        """Start a router on a free loopback port in front of ``workers``.

        Each worker is ``"HOST:PORT"`` or ``"unix:PATH"``; its index is its position.
        Its output is appended to ``log`` (default ``<workdir>/router.log``; with
        neither, a temporary directory that :meth:`close` removes).
        """
        router = cls.launch(workers, policy=policy, workdir=workdir, log=log)
        router.wait_ready()
        return router

    @classmethod
    def launch(
        cls,
        workers: Sequence[str],
        *,
        policy: str = "round-robin",
        workdir: Path | None = None,
        log: Path | None = None,
    ) -> Router:
        """Like :meth:`start` but returns at once; call :meth:`wait_ready` before use."""
        check_policy(policy)
        if not workers:
            raise UsageError("a router needs at least one worker")
        owned = None
        if log is None:
            if workdir is None:
                workdir = owned = Path(tempfile.mkdtemp(prefix="scanproof-router-"))
            log = workdir / "router.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = spawn_child(
            [
                sys.executable,
                "-m",
                "harness.cluster.router._main",
                policy,
                *workers,
            ],
            log=log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        return cls(proc, log, owned_dir=owned)

    def wait_ready(self) -> None:
        """Block until the router listens; InfrastructureError if it does not start."""
        if self.port:
            return
        assert self._proc.stdout is not None
        line = read_line(self._proc.stdout, _REPLY_TIMEOUT)
        if not line.startswith("READY "):
            code = None
            with contextlib.suppress(subprocess.TimeoutExpired):  # exiting: its code, if soon
                code = self._proc.wait(1.0 if line == "" else 0.0)
            kill_group(self._proc)
            raise InfrastructureError(
                f"the router did not start ({self._ended(code)}):\n{tail(self._log)}"
            )
        self.port = int(line.split()[1])
        self.url = f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        """The router's log file (its stderr)."""
        return self._log

    def _ended(self, code: int | None = None) -> str:
        """``exit code 1, log PATH`` (``still running`` when it has not exited)."""
        code = self._proc.poll() if code is None else code
        if code is None:
            state = "still running"
        elif code < 0:
            state = f"killed by signal {-code}"
        else:
            state = f"exit code {code}"
        return f"{state}, log {self._log}"

    def _await_exit(self) -> None:
        """Give a router that seems to be dying up to 1 s to exit, so its end can be named."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(1.0)

    def _command(self, line: str) -> str:
        with self._lock:
            if self._proc.poll() is not None or self._proc.stdin is None:
                raise InfrastructureError(
                    f"the router has exited ({self._ended()}):\n{tail(self._log)}"
                )
            assert self._proc.stdout is not None
            try:
                self._proc.stdin.write(line.encode() + b"\n")
                self._proc.stdin.flush()
            except BrokenPipeError as exc:
                self._await_exit()  # a killed router's pipe breaks before it can be reaped
                raise InfrastructureError(
                    f"the router has exited ({self._ended()}):\n{tail(self._log)}"
                ) from exc
            reply = read_line(self._proc.stdout, _REPLY_TIMEOUT)
        if not reply:
            self._await_exit()  # no reply: usually the router is dying right now
            if self._proc.poll() is not None:
                raise InfrastructureError(
                    f"the router has exited ({self._ended()}):\n{tail(self._log)}"
                )
        if reply.startswith("error") or not reply:
            raise InfrastructureError(
                f"router command {line!r} failed: {reply or 'no reply'} ({self._ended()})"
            )
        return reply

    def worker_up(self, index: int) -> None:
        """Put worker ``index`` (back) into rotation; returns once the router has it."""
        self._command(f"up {index}")

    def worker_down(self, index: int) -> None:
        """Take worker ``index`` out of rotation (requests already sent still finish)."""
        self._command(f"down {index}")

    def set_policy(self, policy: str) -> None:
        """Switch the routing policy on the fly."""
        self._command(f"policy {check_policy(policy)}")

    def routes(self) -> tuple[WorkerRoute, ...]:
        """The router's view of every worker."""
        rows = json.loads(self._command("stats"))
        return tuple(WorkerRoute(r["worker"], r["up"], r["requests"], r["errors"]) for r in rows)

    def close(self) -> None:
        """Stop the router process; safe to call twice."""
        if self._proc.stdin is not None:
            # a router that died leaves a broken pipe: closing flushes into it
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        kill_group(self._proc)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> Router:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
