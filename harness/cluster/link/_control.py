"""The parent-side handle on the link process: one proxy per worker in front of Redis.

.. code-block:: python

    links = Links.start("redis://127.0.0.1:7001/0", workers=2, log=Path("links.log"))
    links.urls                                 # what each worker gets as REDIS_URL
    links.latency(1, up_ms=20, down_ms=20)     # worker 1's commands take 40 ms more
    links.partition(0)                         # worker 0 cut off: connects refused
    links.heal()                               # every link plain again
    links.close()
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from harness.cluster._proc import (
    LOOPBACK,
    kill_group,
    read_line,
    reserve_port,
    spawn_child,
    tail,
)
from harness.errors import InfrastructureError, UsageError

_REPLY_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class LinkStats:
    """One link's counters since the cluster started.

    ``resets``: connections reset by a ``reset`` fault; ``cut``: connections reset by a
    partition; ``dropped_bytes``: bytes a blackhole swallowed; ``delayed``: chunks a
    latency fault held back (either way); ``up``/``down``: bytes from the worker to
    Redis and back.
    """

    link: int
    mode: str
    open: int
    listening: bool
    accepted: int
    resets: int
    cut: int
    dropped_bytes: int
    delayed: int
    up: int
    down: int


def _upstream(redis_url: str) -> tuple[str, int]:
    parts = urlsplit(redis_url)
    if parts.scheme != "redis" or not parts.hostname:
        raise UsageError(
            f"link faults need a plain redis://HOST:PORT Redis, not {redis_url!r}; "
            "use --redis server"
        )
    return parts.hostname, parts.port or 6379


def _via(redis_url: str, port: int) -> str:
    """``redis_url`` with its host and port replaced by the link's (auth, db, query kept)."""
    parts = urlsplit(redis_url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{LOOPBACK}:{port}" if auth else f"{LOOPBACK}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Links:
    """Handle on a running link process; see the module docstring."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        log: Path,
        urls: tuple[str, ...],
        held: list[socket.socket],
    ) -> None:
        self._proc = proc
        self._log = log
        #: The Redis URL each worker uses, by worker index.
        self.urls = urls
        self._held = held  # the links' ports, held while the process lives
        self._lock = threading.Lock()
        self._ready = False

    @classmethod
    def launch(cls, redis_url: str, *, workers: int, log: Path) -> Links:
        """Start the link process for ``workers`` workers; returns at once (:meth:`wait_ready`)."""
        host, port = _upstream(redis_url)
        held = [reserve_port() for _ in range(workers)]
        ports = [int(s.getsockname()[1]) for s in held]
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = spawn_child(
            [sys.executable, "-m", "harness.cluster.link._main", host, str(port)]
            + [str(p) for p in ports],
            log=log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        return cls(proc, log, tuple(_via(redis_url, p) for p in ports), held)

    @classmethod
    def start(cls, redis_url: str, *, workers: int, log: Path) -> Links:
        links = cls.launch(redis_url, workers=workers, log=log)
        try:
            links.wait_ready()
        except BaseException:
            links.close()
            raise
        return links

    def wait_ready(self) -> None:
        """Block until every link listens; InfrastructureError if the process does not start."""
        if self._ready:
            return
        assert self._proc.stdout is not None
        line = read_line(self._proc.stdout, _REPLY_TIMEOUT)
        if line != "READY":
            raise InfrastructureError(f"the Redis link proxy did not start:\n{tail(self._log)}")
        self._ready = True

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return self._log

    def _command(self, line: str) -> str:
        with self._lock:
            stdin, stdout = self._proc.stdin, self._proc.stdout
            if self._proc.poll() is not None or stdin is None or stdout is None:
                raise InfrastructureError(f"the Redis link proxy has exited:\n{tail(self._log)}")
            try:
                stdin.write(line.encode() + b"\n")
                stdin.flush()
            except BrokenPipeError as exc:
                raise InfrastructureError(
                    f"the Redis link proxy has exited:\n{tail(self._log)}"
                ) from exc
            reply = read_line(stdout, _REPLY_TIMEOUT)
        if not reply or reply.startswith("error"):
            raise InfrastructureError(
                f"link command {line!r} failed: {reply or 'no reply'} (log {self._log})"
            )
        return reply

    def _index(self, index: int) -> int:
        if not 0 <= index < len(self.urls):
            raise UsageError(f"link {index}: no such worker; valid: 0..{len(self.urls) - 1}")
        return index

    def latency(self, index: int, *, up_ms: float, down_ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every chunk from worker ``index`` to Redis by ``up_ms`` (and back by
        ``down_ms``), each plus a uniform 0..``jitter_ms``; byte order is kept."""
        self._command(f"latency {self._index(index)} {up_ms} {down_ms} {jitter_ms}")

    def reset(self, index: int, *, commands: int) -> None:
        """Let ``commands`` more commands of worker ``index`` through, then reset (TCP RST)
        the connection that sends the next one, and every one after, until healed."""
        self._command(f"reset {self._index(index)} {int(commands)}")

    def blackhole(self, index: int) -> None:
        """Worker ``index``'s link accepts and forwards nothing: its commands time out."""
        self._command(f"blackhole {self._index(index)}")

    def partition(self, index: int) -> None:
        """Cut worker ``index`` from Redis: connects refused, open connections reset."""
        self._command(f"partition {self._index(index)}")

    def heal(self, index: int | None = None) -> None:
        """Every link (or link ``index``) plain again and listening."""
        self._command(f"heal {'all' if index is None else self._index(index)}")

    def stats(self) -> tuple[LinkStats, ...]:
        rows = json.loads(self._command("stats"))
        return tuple(LinkStats(**{k: r[k] for k in LinkStats.__dataclass_fields__}) for r in rows)

    def close(self) -> None:
        """Stop the link process and release its ports; safe to call twice."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        kill_group(self._proc)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        for sock in self._held:
            sock.close()
        self._held = []

    def __enter__(self) -> Links:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
