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

from harness._redis_base import (
    DESTRUCTIVE_FAULTS,
    EVICTION_POLICIES,
    Fault,
    RedisBackend,
    make_client,
)
from harness._redis_local import EmbeddedRedis, ServerRedis
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
    "EVICTION_POLICIES",
    "EmbeddedRedis",
    "ExternalRedis",
    "Fault",
    "RedisBackend",
    "ServerRedis",
    "make_client",
    "open_backend",
    "resolve_spec",
]
