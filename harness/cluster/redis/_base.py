"""The Redis backend interface: the fault catalogue and the base class with its hooks.

Public names are re-exported by :mod:`harness.cluster.redis`; use that module.
"""

from __future__ import annotations

import enum
from types import TracebackType
from typing import Final

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.cluster.events import ClusterEvent, EventHook, EventKind, emit
from harness.errors import InfrastructureError, UsageError


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


class RedisBackend:
    """A Redis shared by all workers, with its fault hooks. Use as a context manager."""

    name: str = "abstract"
    supported_faults: frozenset[Fault] = frozenset()

    def __init__(self, url: str, *, note: str = "") -> None:
        self.url = url
        #: How this backend was chosen (``auto`` says which one it picked and why).
        self.note = note
        #: Called with a :class:`~harness.cluster.events.ClusterEvent` after each fault lands.
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
