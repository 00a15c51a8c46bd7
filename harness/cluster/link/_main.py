"""The link process: one small TCP proxy per worker between that worker and Redis.

Run as ``python -m harness.cluster.link._main HOST PORT LPORT [LPORT ...]`` by
:class:`harness.cluster.link.Links`: link ``i`` listens on loopback ``LPORT`` number
``i`` (a port its parent holds with :func:`harness.cluster._proc.reserve_port`, so a
partitioned link's port refuses connects and nobody else can take it) and forwards
to Redis at ``HOST:PORT``. It prints ``READY`` on stdout, then takes commands on
stdin, one per line, each answered by one line (``ok``, JSON, or ``error ...``):

    latency <i> <up_ms> <down_ms> <jitter_ms>   delay each chunk (order kept)
    reset <i> <commands>                        let <commands> more commands through,
                                                then reset (RST) every connection that
                                                sends one, until healed
    blackhole <i>                               accept, forward nothing either way
    partition <i>                               stop listening (connects are refused)
                                                and reset every open connection
    heal <i>|all                                back to a plain link; blackholed
                                                connections are reset (their state is lost)
    stats                                       one JSON line: a dict per link

Why it looks like this (the router's style): callback ``Protocol``s on uvloop, and
on a healthy link each chunk is handed to the other side as is, with no per-byte
Python work. Commands are counted (RESP arrays framed with ``bytes.find``) only
while a reset is armed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import socket
import struct
import sys
from typing import Any

from harness.cluster._proc import listen_on_reserved, set_pdeathsig, start_parent_watchdog

_LINGER_RST = struct.pack("ii", 1, 0)


class _Link:
    """One worker's link: its listener, its connections, its fault, its counters."""

    def __init__(self, index: int, port: int, upstream: tuple[str, int]) -> None:
        self.index = index
        self.port = port
        self.upstream = upstream
        self.server: asyncio.Server | None = None
        self.conns: set[_Client] = set()
        self.plain = True  # no fault: the fast path
        self.mode = "plain"
        self.up_s = 0.0
        self.down_s = 0.0
        self.jitter_s = 0.0
        self.reset_left = -1  # commands still let through; -1 when no reset is armed
        self.blackhole = False
        self.stats = dict.fromkeys(
            (
                "accepted",
                "resets",
                "cut",
                "refused_upstream",
                "dropped_bytes",
                "delayed",
                "up",
                "down",
            ),
            0,
        )
        self.rng = random.Random(index)

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        sock = listen_on_reserved(self.port)
        self.server = await loop.create_server(lambda: _Client(self), sock=sock)

    def delay(self, base: float) -> float:
        return base + (self.rng.uniform(0.0, self.jitter_s) if self.jitter_s else 0.0)

    def heal(self) -> None:
        for conn in list(self.conns):
            if conn.black:
                conn.reset(counted=False)
        self.plain, self.mode = True, "plain"
        self.up_s = self.down_s = self.jitter_s = 0.0
        self.reset_left = -1
        self.blackhole = False

    def row(self) -> dict[str, Any]:
        return {
            "link": self.index,
            "port": self.port,
            "mode": self.mode,
            "open": len(self.conns),
            "listening": self.server is not None,
            **self.stats,
        }


def _rst(transport: asyncio.BaseTransport | None) -> None:
    """Close with a TCP reset (SO_LINGER 0), the way a dropped link looks to a client."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()  # type: ignore[attr-defined]


def command_ends(buf: bytes) -> tuple[list[int], int]:
    """Where each complete RESP command in ``buf`` ends, and how much was consumed.

    >>> command_ends(b"*1\\r\\n$4\\r\\nPING\\r\\n*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk")
    ([14], 14)
    >>> command_ends(b"PING\\r\\n")
    ([6], 6)
    """
    ends: list[int] = []
    pos = 0
    n = len(buf)
    while pos < n:
        if buf[pos : pos + 1] != b"*":  # an inline command: one line
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            pos = eol + 2
            ends.append(pos)
            continue
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            break
        count = int(buf[pos + 1 : eol])
        cur = eol + 2
        whole = True
        for _ in range(count):
            eol = buf.find(b"\r\n", cur)
            if eol < 0:
                whole = False
                break
            cur = eol + 2 + int(buf[cur + 1 : eol]) + 2
            if cur > n:
                whole = False
                break
        if not whole:
            break
        pos = cur
        ends.append(pos)
    return ends, pos


class _Upstream(asyncio.Protocol):
    """The link's connection to Redis for one client connection."""

    __slots__ = ("client", "transport")

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        link = client.link
        link.stats["down"] += len(data)
        if link.plain:
            client.transport.write(data)
        elif client.black:
            link.stats["dropped_bytes"] += len(data)
        elif link.down_s or link.jitter_s:
            client.later(client.transport, data, link.down_s, up=False)
        else:
            client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.client.transport.is_closing():
            self.client.transport.close()

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()


class _Client(asyncio.Protocol):
    """One connection from the worker; its bytes go to its own upstream connection."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.up: _Upstream | None = None
        self.early: list[bytes] = []
        self.black = False
        self.pending = b""  # a partial command, while a reset is armed
        self.due_up = 0.0
        self.due_down = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        link = self.link
        link.conns.add(self)
        link.stats["accepted"] += 1
        if link.blackhole:
            self.black = True
            return
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.link.upstream
        try:
            _, up = await loop.create_connection(lambda: _Upstream(self), host, port)
        except OSError:
            self.link.stats["refused_upstream"] += 1
            self.transport.close()
            return
        if self.transport.is_closing():
            if up.transport is not None:
                up.transport.close()
            return
        self.up = up
        early, self.early = self.early, []
        for chunk in early:
            self.data_received(chunk)

    def data_received(self, data: bytes) -> None:
        link = self.link
        up = self.up
        if link.plain and up is not None:  # the fast path
            link.stats["up"] += len(data)
            up.transport.write(data)  # type: ignore[union-attr]
            return
        if self.black:
            link.stats["dropped_bytes"] += len(data)
            return
        if up is None:
            self.early.append(data)
            return
        link.stats["up"] += len(data)
        if link.reset_left >= 0:
            data = self._budget(data)
            if not data:
                return
        if link.up_s or link.jitter_s:
            self.later(up.transport, data, link.up_s, up=True)  # type: ignore[arg-type]
        else:
            up.transport.write(data)  # type: ignore[union-attr]

    def _budget(self, data: bytes) -> bytes:
        """The part of ``data`` the reset budget lets through; resets past it."""
        link = self.link
        if link.reset_left == 0:
            self.reset()
            return b""
        buf = self.pending + data
        ends, used = command_ends(buf)
        left = link.reset_left
        if len(ends) < left or (len(ends) == left and used == len(buf)):
            link.reset_left -= len(ends)
            self.pending = buf[used:]
            return data
        # The budget ends inside this chunk: forward up to the end of its last
        # command, then reset (the next command has started: the mid-group error).
        head = buf[len(self.pending) : ends[left - 1]]
        link.reset_left = 0
        self.pending = b""
        if self.up is not None and self.up.transport is not None and head:
            self.up.transport.write(head)
        self.reset()
        return b""

    def later(self, transport: asyncio.Transport, data: bytes, base: float, *, up: bool) -> None:
        loop = asyncio.get_running_loop()
        self.link.stats["delayed"] += 1
        due = loop.time() + self.link.delay(base)
        # Never overtake an earlier chunk: jitter must not reorder a byte stream.
        if up:
            due = self.due_up = max(due, self.due_up)
        else:
            due = self.due_down = max(due, self.due_down)
        loop.call_at(due, _write_if_open, transport, data)

    def reset(self, *, counted: bool = True) -> None:
        self.link.stats["resets"] += counted
        _rst(self.transport)
        if self.up is not None:
            _rst(self.up.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.conns.discard(self)
        if self.up is not None and self.up.transport is not None:
            self.up.transport.close()

    def pause_writing(self) -> None:
        if self.up is not None and self.up.transport is not None:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.up is not None and self.up.transport is not None:
            self.up.transport.resume_reading()


def _write_if_open(transport: asyncio.Transport, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)


class _Links:
    def __init__(self, links: list[_Link]) -> None:
        self.links = links

    def _pick(self, arg: str) -> list[_Link]:
        if arg == "all":
            return self.links
        return [self.links[int(arg)]]

    async def command(self, line: str) -> str:
        verb, *args = line.split()
        if verb == "stats":
            return json.dumps([link.row() for link in self.links])
        if verb == "heal":
            for link in self._pick(args[0]):
                link.heal()
                if link.server is None:
                    await link.listen()
            return "ok"
        link = self.links[int(args[0])]
        if verb == "latency":
            link.up_s, link.down_s, link.jitter_s = (float(a) / 1000.0 for a in args[1:4])
            link.plain, link.mode = False, "latency"
        elif verb == "reset":
            link.reset_left = int(args[1])
            link.plain, link.mode = False, "reset"
        elif verb == "blackhole":
            link.blackhole = True
            for conn in link.conns:
                conn.black = True
            link.plain, link.mode = False, "blackhole"
        elif verb == "partition":
            if link.server is not None:
                link.server.close()
                link.server = None
            for conn in list(link.conns):
                link.stats["cut"] += 1
                conn.reset(counted=False)
            link.mode = "partition"
        else:
            raise ValueError(f"unknown command {verb!r}")
        return "ok"


class _Control(asyncio.Protocol):
    def __init__(self, links: _Links, done: asyncio.Future[None]) -> None:
        self.links = links
        self.done = done
        self.pending = b""
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            line = await self.queue.get()
            try:
                reply = await self.links.command(line)
            except (ValueError, IndexError, OSError) as exc:
                reply = f"error {exc}".replace("\n", " ")
            os.write(1, reply.encode() + b"\n")

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            self.queue.put_nowait(line.decode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)  # the parent closed our stdin: shut down


async def _serve(host: str, port: int, ports: list[int]) -> None:
    loop = asyncio.get_running_loop()
    links = [_Link(i, p, (host, port)) for i, p in enumerate(ports)]
    for link in links:
        await link.listen()
    done: asyncio.Future[None] = loop.create_future()
    await loop.connect_read_pipe(lambda: _Control(_Links(links), done), sys.stdin.buffer)
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    os.write(1, b"READY\n")
    await done


def main(argv: list[str]) -> int:
    set_pdeathsig()
    start_parent_watchdog()
    import uvloop

    host, port, ports = argv[0], int(argv[1]), [int(p) for p in argv[2:]]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(host, port, ports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
