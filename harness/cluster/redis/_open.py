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

import ipaddress
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import redis

from harness.cluster.redis._base import (
    DESTRUCTIVE_FAULTS,
    EVICTION_POLICIES,
    Fault,
    RedisBackend,
    make_client,
)
from harness.cluster.redis._local import EmbeddedRedis, ServerRedis
from harness.errors import InfrastructureError, UsageError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ExternalRedis(RedisBackend):
    """A Redis you run, given as a URL: never restarted, destructive faults opt-in."""

    name = "external"
    supported_faults = frozenset(
        {Fault.PAUSE, Fault.EVICTION, Fault.FLUSH, Fault.EXPIRE, Fault.DELETE}
    )

    def __init__(
        self, url: str, *, allow_destructive: bool = False, allow_remote_faults: bool = False
    ) -> None:
        host, port, db = check_url(url)
        super().__init__(url, note=f"external Redis at {host}:{port}")
        self.host = host
        self.allow_destructive = allow_destructive
        self.allow_remote_faults = allow_remote_faults
        client = make_client(url, timeout=1.0)
        try:
            client.ping()
        except redis.ResponseError as exc:
            if "DB index is out of range" in str(exc):
                raise UsageError(
                    f"--redis {url}: DB index {db} is out of range for that server (a default "
                    f"server has 0..15); use redis://{host}:{port}/0"
                ) from exc
            raise InfrastructureError(f"external Redis {url} refused PING: {exc}") from exc
        except redis.RedisError as exc:
            raise InfrastructureError(f"external Redis {url} does not answer PING: {exc}") from exc
        finally:
            client.close()

    def _require(self, fault: Fault) -> None:
        super()._require(fault)
        refusal = opt_in_refusal(
            self.url,
            fault,
            allow_destructive=self.allow_destructive,
            allow_remote_faults=self.allow_remote_faults,
        )
        if refusal is not None:
            raise UsageError(refusal)


def opt_in_refusal(
    url: str, fault: Fault, *, allow_destructive: bool, allow_remote_faults: bool
) -> str | None:
    """Why ``fault`` may not touch the external Redis at ``url`` without an opt-in the
    user did not give (the option to pass included), or None when it may."""
    host = urlsplit(url).hostname or ""
    if not _is_loopback(host) and not allow_remote_faults:
        return (
            f"refusing fault {fault.value!r} on non-loopback Redis host {host!r}; "
            "pass --allow-remote-faults (allow_remote_faults=True) if you mean it"
        )
    if fault in DESTRUCTIVE_FAULTS and not allow_destructive:
        return (
            f"refusing destructive action {fault.value!r} on external Redis {url}; "
            "pass --allow-destructive (allow_destructive=True) if it holds nothing you need"
        )
    return None


_URL_FORM = "redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0"


def check_url(url: str) -> tuple[str, int, int]:
    """``(host, port, db)`` of a ``redis://`` or ``rediss://`` URL, or one UsageError
    naming what is wrong (no host, a port that is not 1..65535, a DB index that is not
    a whole number >= 0)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise UsageError(
            f"--redis {url}: not a Redis URL; use auto, embedded, server or {_URL_FORM}"
        )
    try:
        port = parts.port if parts.port is not None else 6379
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raw = parts.netloc.rpartition(":")[2]
        raise UsageError(f"--redis {url}: port {raw!r} must be a number 1..65535; use {_URL_FORM}")
    raw_db = parts.path.strip("/") or "0"
    if not raw_db.isdigit():
        raise UsageError(
            f"--redis {url}: DB index {raw_db!r} must be a whole number >= 0 (a default server "
            f"has 0..15); use {_URL_FORM}"
        )
    return parts.hostname, port, int(raw_db)


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
        check_url(spec)
        return "url", "external Redis"
    raise UsageError(
        f"--redis {spec!r}: unknown backend; use auto, embedded, server or redis://HOST:PORT/DB"
    )


def spec_backend(spec: str) -> type[RedisBackend]:
    """The backend class ``spec`` opens (``auto`` looks for redis-server on PATH), without
    starting or connecting to anything: its ``supported_faults`` are class data."""
    kind, _ = resolve_spec(spec)
    backends: dict[str, type[RedisBackend]] = {
        "url": ExternalRedis,
        "server": ServerRedis,
        "embedded": EmbeddedRedis,
    }
    return backends[kind]


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
    "EVICTION_POLICIES",
    "EmbeddedRedis",
    "ExternalRedis",
    "Fault",
    "RedisBackend",
    "ServerRedis",
    "check_url",
    "make_client",
    "open_backend",
    "opt_in_refusal",
    "resolve_spec",
    "spec_backend",
]
