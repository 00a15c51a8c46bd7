"""The router's view of the workers: rotation policies, keep-alive pools, probing, control.

Used by the router process (:mod:`harness.cluster.router._main`); see
:mod:`harness.cluster.router` for the behaviour users see.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import zlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from harness.cluster.router._proto import Upstream

POLICIES: Final = ("round-robin", "random", "sticky")
# The event loop keeps only weak references to tasks: hold them until they finish.
_TASKS: set[asyncio.Task[None]] = set()


def spawn_task(coroutine: Coroutine[None, None, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


_PROBE_INTERVAL: Final = 0.2


def with_host(request: bytes, host_line: bytes) -> bytes:
    """``request`` with its Host header replaced by ``host_line`` (``b"\\r\\nHost: h:p"``).

    >>> request = b"GET / HTTP/1.1\\r\\nhost: 127.0.0.1:9\\r\\nA: b\\r\\n\\r\\n"
    >>> with_host(request, b"\\r\\nHost: web:80")
    b'GET / HTTP/1.1\\r\\nHost: web:80\\r\\nA: b\\r\\n\\r\\n'
    """
    end = request.find(b"\r\n\r\n")
    head = request[: end + 2].lower()
    start = head.find(b"\r\nhost:")
    if start < 0:
        return request[:end] + host_line + request[end:]
    stop = head.find(b"\r\n", start + 2)
    return request[:start] + host_line + request[stop:]


# The ``error`` of the router's own answers (see docs/cluster.md), and their header.
WORKER_UNAVAILABLE: Final = "worker_unavailable"  # 502: connect failed, never sent
WORKER_CLOSED: Final = "worker_closed"  # 502: sent, then dropped; it may have run
BAD_ANSWER: Final = "bad_worker_answer"  # 502: the worker's answer could not be framed
NO_WORKER: Final = "no_worker_available"  # 503: every worker is out of rotation
LOCAL_HEADER: Final = "X-Scanproof-Router"


def local_response(status: str, payload: dict[str, object], worker: int | None) -> bytes:
    """A whole JSON response the router writes itself (502, 503, 400).

    It carries ``X-Scanproof-Router: local``, which no answer of a worker does, so a
    client never mistakes it for the service's own answer.
    """
    body = json.dumps(payload).encode()
    extra = f"X-Scanproof-Worker: {worker}\r\n" if worker is not None else ""
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{LOCAL_HEADER}: local\r\n{extra}\r\n"
    ).encode() + body


class Worker:
    """One worker as the router sees it: address, rotation state, idle connections, counts."""

    __slots__ = (
        "admin_down",
        "errors",
        "failed",
        "header",
        "host",
        "host_line",
        "idle",
        "index",
        "port",
        "requests",
        "unix",
        "up",
    )

    async def connect(self, factory: Callable[[], Upstream]) -> Upstream:
        loop = asyncio.get_running_loop()
        if self.unix:
            _, upstream = await loop.create_unix_connection(factory, self.unix)
        else:
            _, upstream = await loop.create_connection(factory, self.host, self.port)
        return upstream

    async def probe(self) -> bool:
        """True if a connection to this worker succeeds now (it is closed at once)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_UNIX if self.unix else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        address: str | tuple[str, int] = self.unix or (self.host, self.port)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), 1.0)
        except (OSError, TimeoutError):
            return False
        finally:
            sock.close()
        return True

    def __init__(self, index: int, target: str) -> None:
        self.index = index
        # "unix:/path" (the supervisor's workers) or "host:port" (anything else).
        self.unix = target[5:] if target.startswith("unix:") else ""
        host, _, port = target.rpartition(":")
        self.host = host
        self.port = 0 if self.unix else int(port)
        # A TCP upstream (a --target deployment, maybe behind a virtual host) is sent its
        # own Host, not the router's loopback address; unix-socket workers get it as is.
        self.host_line = b"" if self.unix else f"\r\nHost: {host}:{self.port}".encode()
        self.idle: list[Upstream] = []
        self.up = True
        self.admin_down = False  # the supervisor took it out (restart, deploy)
        self.failed = False  # a connect failed; probed until it answers again
        self.header = f"X-Scanproof-Worker: {index}\r\n".encode()
        self.requests = 0
        self.errors = 0

    def drop_idle(self) -> None:
        idle, self.idle = self.idle, []
        for upstream in idle:
            upstream.transport.close()


class Proxy:
    """All workers, the routing policy, probing of failed workers and control commands."""

    def __init__(self, workers: list[Worker], policy: str) -> None:
        self.workers = workers
        self.policy = policy
        self.sticky = policy == "sticky"
        self._rr = -1
        self._probing = False

    def choose(self, auth: bytes | None) -> Worker | None:
        workers = self.workers
        count = len(workers)
        if self.policy == "round-robin":
            i = self._rr
            for _ in range(count):
                i += 1
                if i >= count:
                    i = 0
                if workers[i].up:
                    self._rr = i
                    return workers[i]
            return None
        if self.policy == "random":
            live = [w for w in workers if w.up]
            return random.choice(live) if live else None
        # sticky: the same identity always lands on the same worker while it is up,
        # and on the next live one while it is not.
        start = zlib.crc32(auth or b"") % count
        for step in range(count):
            worker = workers[(start + step) % count]
            if worker.up:
                return worker
        return None

    def mark_failed(self, worker: Worker) -> None:
        worker.up = False
        worker.failed = True
        worker.drop_idle()
        if not self._probing:
            self._probing = True
            spawn_task(self._probe())

    async def _probe(self) -> None:
        """Bring back workers whose connect failed once their port accepts again."""
        try:
            while any(w.failed for w in self.workers):
                await asyncio.sleep(_PROBE_INTERVAL)
                for worker in self.workers:
                    if not worker.failed or not await worker.probe():
                        continue
                    worker.failed = False
                    worker.up = not worker.admin_down
        finally:
            self._probing = False

    def command(self, line: str) -> str:
        verb, *args = line.split()
        if verb in ("up", "down"):
            worker = self.workers[int(args[0])]
            worker.drop_idle()
            worker.admin_down = verb == "down"
            worker.failed = False
            worker.up = verb == "up"
            return "ok"
        if verb == "policy" and args and args[0] in POLICIES:
            self.policy = args[0]
            self.sticky = args[0] == "sticky"
            return "ok"
        if verb == "stats":
            return json.dumps(
                [
                    {"worker": w.index, "up": w.up, "requests": w.requests, "errors": w.errors}
                    for w in self.workers
                ]
            )
        return f"error unknown command {line!r}"
