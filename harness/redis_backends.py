"""The Redis a cluster shares, and the faults each kind of Redis can take.

Three backends, chosen by one spec string:

- ``"embedded"`` (default): fakeredis's TCP server in a child process; needs
  nothing installed. Restart (data lost), stall (SIGSTOP), flush, expire, delete.
- ``"server"``: a real ``redis-server`` from PATH on a free loopback port, no
  persistence, ``DEBUG`` enabled locally. Adds ``CLIENT PAUSE`` and real
  eviction through ``maxmemory``.
- ``"redis://..."``: a Redis you run. Never restarted or stalled; destructive
  faults need ``allow_destructive=True``; any fault on a non-loopback host also
  needs ``allow_remote_faults=True``.
- ``"auto"``: ``server`` when ``redis-server`` is on PATH, else ``embedded``.

Every fault method checks ``supported_faults`` and the opt-ins first and
raises :class:`~harness.errors.UsageError` naming the flag to pass; it then
checks that the fault landed and raises
:class:`~harness.errors.InfrastructureError` if not.

>>> with open_backend("auto") as redis_backend:  # doctest: +SKIP
...     print(redis_backend.name, redis_backend.url)
...     redis_backend.flush()
...     seconds = redis_backend.restart()
server redis://127.0.0.1:40123/0
"""

from __future__ import annotations

import enum
import ipaddress
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness._events import ClusterEvent, EventHook, EventKind, emit
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
from harness.errors import InfrastructureError, UsageError

_READY_TIMEOUT: Final = 10.0


class Fault(enum.Enum):
    """A fault a Redis backend can take (see ``RedisBackend.supported_faults``)."""

    RESTART = "restart"  # process killed and started again: all data lost
    PAUSE = "pause"  # CLIENT PAUSE: the server holds every client's commands
    STALL = "stall"  # SIGSTOP: the server process freezes, connections hang
    EVICTION = "eviction"  # maxmemory + policy: the server evicts keys itself
    FLUSH = "flush"  # FLUSHALL
    EXPIRE = "expire"  # a chosen key gets a short TTL
    DELETE = "delete"  # chosen keys are deleted


DESTRUCTIVE_FAULTS: Final = frozenset({Fault.FLUSH, Fault.EVICTION, Fault.EXPIRE, Fault.DELETE})
"""Faults that lose data or change configuration: opt-in on an external Redis."""

EVICTION_POLICIES: Final = frozenset(
    {
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "noeviction",
    }
)


def make_client(url: str, *, timeout: float = 2.0) -> redis.Redis:
    """A redis-py client with an explicit policy: no retries, ``timeout`` s per command.

    redis-py retries failed commands by default, which would hide the very
    outages we inject and can repeat writes.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RedisBackend:
    """A Redis shared by all workers, with its fault hooks. Use as a context manager."""

    name: str = "abstract"
    supported_faults: frozenset[Fault] = frozenset()

    def __init__(self, url: str, *, note: str = "") -> None:
        self.url = url
        #: How this backend was chosen (``auto`` says which one it picked and why).
        self.note = note
        #: Called with a :class:`~harness._events.ClusterEvent` after each fault lands.
        self.on_event: EventHook | None = None

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop what this backend started (nothing for an external Redis)."""

    def __enter__(self) -> RedisBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def pids(self) -> list[int]:
        """OS processes this backend started (empty for an external Redis)."""
        return []

    def wait_ready(self) -> None:
        """Block until the server answers (for backends opened with ``wait=False``)."""

    def client(self) -> redis.Redis:
        """A fresh no-retry client for this Redis (close it when done)."""
        return make_client(self.url)

    def ping(self) -> bool:
        """True if the server answers PING within a second."""
        client = make_client(self.url, timeout=1.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    # -------------------------------------------------------------- fault hooks
    def _require(self, fault: Fault) -> None:
        if fault not in self.supported_faults:
            supported = ", ".join(sorted(f.value for f in self.supported_faults)) or "none"
            raise UsageError(
                f"Redis backend {self.name!r} ({self.url}) does not support fault "
                f"{fault.value!r} (it supports: {supported}); use --redis server for all faults"
            )

    def _emit(self, kind: EventKind, detail: str = "", duration: float | None = None) -> None:
        emit(self.on_event, ClusterEvent(kind, detail=detail, duration=duration))

    def restart(self) -> float:
        """Kill the Redis process and start it again, empty; return seconds to ready."""
        self._require(Fault.RESTART)
        raise NotImplementedError

    def client_pause(self, seconds: float) -> None:
        """``CLIENT PAUSE`` every client for ``seconds`` (returns at once)."""
        self._require(Fault.PAUSE)
        client = self.client()
        try:
            if not client.client_pause(int(seconds * 1000), all=True):
                raise InfrastructureError(f"CLIENT PAUSE was not accepted by {self.url}")
        except redis.RedisError as exc:
            raise InfrastructureError(f"CLIENT PAUSE on {self.url} failed: {exc}") from exc
        finally:
            client.close()
        self._emit(EventKind.REDIS_PAUSED, f"{seconds} s")

    def stall(self) -> None:
        """Freeze the Redis process (SIGSTOP): clients hang until :meth:`unstall`."""
        self._require(Fault.STALL)
        raise NotImplementedError

    def unstall(self) -> None:
        """Resume a stalled Redis process (SIGCONT)."""
        self._require(Fault.STALL)
        raise NotImplementedError

    def used_memory(self) -> int:
        """``used_memory`` from ``INFO memory``, in bytes (an empty server uses ~1 MB)."""
        client = self.client()
        try:
            info = client.info("memory")
        except redis.RedisError as exc:
            raise InfrastructureError(f"INFO memory on {self.url} failed: {exc}") from exc
        finally:
            client.close()
        return int(info["used_memory"])

    def maxmemory_for(self, headroom_bytes: int) -> int:
        """A ``maxmemory`` that leaves ``headroom_bytes`` above what is used now.

        A fixed small value (say 1 MB) is below an empty server's own usage, and
        every write then fails with OOM instead of evicting.
        """
        return self.used_memory() + headroom_bytes

    def set_maxmemory(self, nbytes: int, policy: str = "allkeys-lru") -> None:
        """Set ``maxmemory`` (0 lifts the limit) and the eviction policy; verified."""
        self._require(Fault.EVICTION)
        if policy not in EVICTION_POLICIES:
            raise UsageError(
                f"eviction policy {policy!r} is unknown; use one of "
                f"{', '.join(sorted(EVICTION_POLICIES))}"
            )
        if nbytes < 0:
            raise UsageError(f"maxmemory {nbytes}: must be >= 0 bytes (0 lifts the limit)")
        client = self.client()
        try:
            client.config_set("maxmemory", nbytes)
            client.config_set("maxmemory-policy", policy)
            got = client.config_get("maxmemory")
        except redis.RedisError as exc:
            raise InfrastructureError(f"CONFIG SET maxmemory on {self.url} failed: {exc}") from exc
        finally:
            client.close()
        if int(got.get("maxmemory") or -1) != nbytes:
            raise InfrastructureError(f"maxmemory did not change on {self.url}: {got}")
        self._emit(EventKind.REDIS_MAXMEMORY, f"{nbytes} bytes, {policy}")

    def flush(self) -> None:
        """``FLUSHALL``: every key of every database is gone (verified)."""
        self._require(Fault.FLUSH)
        client = self.client()
        try:
            client.flushall()
            left = client.dbsize()
        except redis.RedisError as exc:
            raise InfrastructureError(f"FLUSHALL on {self.url} failed: {exc}") from exc
        finally:
            client.close()
        if left:
            raise InfrastructureError(f"FLUSHALL on {self.url} left {left} keys")
        self._emit(EventKind.REDIS_FLUSHED)

    def expire(self, key: str, seconds: float) -> bool:
        """Give ``key`` a TTL of ``seconds``; False if the key did not exist."""
        self._require(Fault.EXPIRE)
        client = self.client()
        try:
            existed = bool(client.pexpire(key, max(1, int(seconds * 1000))))
        except redis.RedisError as exc:
            raise InfrastructureError(f"PEXPIRE {key} on {self.url} failed: {exc}") from exc
        finally:
            client.close()
        self._emit(EventKind.REDIS_EXPIRED, f"{key} in {seconds} s, existed={existed}")
        return existed

    def delete(self, *keys: str) -> int:
        """Delete ``keys``; returns how many existed."""
        self._require(Fault.DELETE)
        if not keys:
            return 0
        client = self.client()
        try:
            deleted = int(client.delete(*keys))
        except redis.RedisError as exc:
            raise InfrastructureError(f"DEL on {self.url} failed: {exc}") from exc
        finally:
            client.close()
        self._emit(EventKind.REDIS_DELETED, f"{deleted} of {len(keys)} keys")
        return deleted


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


class ExternalRedis(RedisBackend):
    """A Redis you run, given as a URL: never restarted, destructive faults opt-in."""

    name = "external"
    supported_faults = frozenset(
        {Fault.PAUSE, Fault.EVICTION, Fault.FLUSH, Fault.EXPIRE, Fault.DELETE}
    )

    def __init__(
        self, url: str, *, allow_destructive: bool = False, allow_remote_faults: bool = False
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise UsageError(
                f"--redis {url!r}: not a Redis URL; use auto, embedded, server or "
                "redis://HOST:PORT/DB"
            )
        super().__init__(url, note=f"external Redis at {parts.hostname}:{parts.port or 6379}")
        self.host = parts.hostname
        self.allow_destructive = allow_destructive
        self.allow_remote_faults = allow_remote_faults
        if not self.ping():
            raise InfrastructureError(f"external Redis {url} does not answer PING")

    def _require(self, fault: Fault) -> None:
        super()._require(fault)
        if not _is_loopback(self.host) and not self.allow_remote_faults:
            raise UsageError(
                f"refusing fault {fault.value!r} on non-loopback Redis host {self.host!r}; "
                "pass --allow-remote-faults (allow_remote_faults=True) if you mean it"
            )
        if fault in DESTRUCTIVE_FAULTS and not self.allow_destructive:
            raise UsageError(
                f"refusing destructive action {fault.value!r} on external Redis {self.url}; "
                "pass --allow-destructive (allow_destructive=True) if it holds nothing you need"
            )


def resolve_spec(spec: str) -> tuple[str, str]:
    """``(kind, note)`` for a ``--redis`` spec; ``auto`` becomes ``server`` or ``embedded``."""
    if spec == "auto":
        binary = shutil.which("redis-server")
        if binary is not None:
            return "server", f"--redis auto picked server ({binary})"
        return "embedded", "--redis auto picked embedded (no redis-server on PATH)"
    if spec in ("embedded", "server"):
        return spec, f"--redis {spec}"
    if spec.startswith(("redis://", "rediss://")):
        return "url", "external Redis"
    raise UsageError(
        f"--redis {spec!r}: unknown backend; use auto, embedded, server or redis://HOST:PORT/DB"
    )


def open_backend(
    spec: str = "embedded",
    *,
    workdir: Path | None = None,
    allow_destructive: bool = False,
    allow_remote_faults: bool = False,
    wait: bool = True,
) -> RedisBackend:
    """Start (or connect to) the Redis named by ``spec``; close it when done.

    ``workdir`` holds the server's log; a temporary directory when omitted.
    ``wait=False`` returns as soon as the process is launched (its URL is
    known): call :meth:`RedisBackend.wait_ready` before using it.
    """
    kind, note = resolve_spec(spec)
    if kind == "url":
        return ExternalRedis(
            spec, allow_destructive=allow_destructive, allow_remote_faults=allow_remote_faults
        )
    if kind == "server":
        return ServerRedis(workdir, note=note, wait=wait)
    return EmbeddedRedis(workdir, note=note, wait=wait)


__all__ = [
    "DESTRUCTIVE_FAULTS",
    "EmbeddedRedis",
    "ExternalRedis",
    "Fault",
    "RedisBackend",
    "ServerRedis",
    "make_client",
    "open_backend",
    "resolve_spec",
]
