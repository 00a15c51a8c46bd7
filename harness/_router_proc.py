"""The router process: a per-request HTTP/1.1 reverse proxy over keep-alive pools.

Run as ``python -m harness._router_proc POLICY TARGET [TARGET ...]`` by
:class:`harness.router.Router`, a TARGET being ``HOST:PORT`` or ``unix:PATH``.
It prints ``READY <port>`` on stdout, then serves, and takes control commands
on stdin, one per line, each answered by one line on stdout:

    up <i>          worker i is (back) in service          -> ok
    down <i>        take worker i out of rotation (drain)  -> ok
    policy <name>   round-robin | random | sticky          -> ok
    stats           -> one JSON line: per-worker up/requests/errors

Why it looks like this: on 2 cores the proxy must cost far less CPU per
request than a worker does, so it is callback-based asyncio ``Protocol``s on
uvloop (no coroutine or task per request), frames messages without parsing
them fully, forwards the worker's bytes untouched except for one header
spliced into the response head, and logs nothing per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import socket
import sys
import zlib
from collections.abc import Callable, Coroutine
from typing import Final

from harness._http_parse import (
    CHUNKED,
    MAX_HEAD,
    UNTIL_CLOSE,
    ChunkedScanner,
    HttpParseError,
    parse_request_head,
    parse_response_head,
)
from harness._proc import LOOPBACK, set_pdeathsig, start_parent_watchdog

POLICIES: Final = ("round-robin", "random", "sticky")
# The event loop keeps only weak references to tasks: hold them until they finish.
_TASKS: set[asyncio.Task[None]] = set()


def _spawn(coroutine: Coroutine[None, None, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


_PROBE_INTERVAL: Final = 0.2


def _local_response(status: str, payload: dict[str, object], worker: int | None) -> bytes:
    body = json.dumps(payload).encode()
    extra = f"x-scanproof-worker: {worker}\r\n" if worker is not None else ""
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


class _Worker:
    __slots__ = (
        "admin_down",
        "errors",
        "failed",
        "header",
        "host",
        "idle",
        "index",
        "port",
        "requests",
        "unix",
        "up",
    )

    async def connect(self, factory: Callable[[], _Upstream]) -> _Upstream:
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
        self.idle: list[_Upstream] = []
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


class _Proxy:
    def __init__(self, workers: list[_Worker], policy: str) -> None:
        self.workers = workers
        self.policy = policy
        self.sticky = policy == "sticky"
        self._rr = -1
        self._probing = False

    def choose(self, auth: bytes | None) -> _Worker | None:
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

    def mark_failed(self, worker: _Worker) -> None:
        worker.up = False
        worker.failed = True
        worker.drop_idle()
        if not self._probing:
            self._probing = True
            _spawn(self._probe())

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


class _Upstream(asyncio.Protocol):
    """One keep-alive connection to a worker, carrying one request at a time."""

    __slots__ = (
        "busy",
        "client",
        "forwarded",
        "hbuf",
        "in_head",
        "keep_alive",
        "method",
        "mode",
        "proxy",
        "remaining",
        "scanner",
        "transport",
        "worker",
    )

    def __init__(self, worker: _Worker, proxy: _Proxy) -> None:
        self.worker = worker
        self.proxy = proxy
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: _Downstream | None = None
        self.busy = False
        self.in_head = True
        self.forwarded = False
        self.hbuf = b""
        self.method = b"GET"
        self.keep_alive = True
        self.mode = 0
        self.remaining = 0
        self.scanner: ChunkedScanner | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, client: _Downstream, request: bytes, method: bytes) -> None:
        self.client = client
        client.upstream = self
        self.busy = True
        self.in_head = True
        self.forwarded = False
        self.method = method
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if self.in_head and client is not None and not self.hbuf and data.startswith(b"HTTP/1.1 2"):
            # Fast path, most responses: the whole response in one read, framed by a
            # single Content-Length, keep-alive. Anything else takes the general path.
            end = data.find(b"\r\n\r\n")
            lower = data[: end + 2].lower()
            start = lower.find(b"\r\ncontent-length:")
            if (
                start > 0
                and b"\r\ntransfer-encoding:" not in lower
                and b"\r\nconnection:" not in lower
                and self.method != b"HEAD"
            ):
                stop = lower.find(b"\r\n", start + 17)
                raw = data[start + 17 : stop].strip()
                if (
                    raw.isdigit()
                    and len(data) == end + 4 + int(raw)
                    and lower.find(b"\r\ncontent-length:", stop) < 0
                ):
                    line_end = data.find(b"\r\n") + 2
                    client.transport.write(data[:line_end] + self.worker.header + data[line_end:])
                    self.client = None
                    self.busy = False
                    self.worker.idle.append(self)
                    client.response_done()
                    return
        if not self.busy:
            self.transport.close()  # a worker talking out of turn: never reuse it
            return
        if self.in_head:
            if self.hbuf:
                data = self.hbuf + data
                self.hbuf = b""
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEAD:
                    self._abort("response head too large")
                else:
                    self.hbuf = data
                return
            head_end = end + 4
            try:
                status, body, self.keep_alive = parse_response_head(data[:head_end], self.method)
            except HttpParseError as exc:
                self._abort(str(exc))
                return
            if status < 200:  # 100 Continue and friends: pass on, the real head follows
                if client is not None:
                    client.transport.write(data[:head_end])
                if len(data) > head_end:
                    self.data_received(data[head_end:])
                return
            line_end = data.find(b"\r\n") + 2
            if client is not None:
                client.transport.write(data[:line_end] + self.worker.header + data[line_end:])
            self.forwarded = True
            self.in_head = False
            self.mode = body
            if body >= 0:
                self.remaining = body - (len(data) - head_end)
                if self.remaining <= 0:
                    self._complete()
            elif body == CHUNKED:
                self.scanner = ChunkedScanner()
                self._scan(data, head_end)
            return
        if client is not None:
            client.transport.write(data)
        if self.mode >= 0:
            self.remaining -= len(data)
            if self.remaining <= 0:
                self._complete()
        elif self.mode == CHUNKED:
            self._scan(data, 0)

    def _scan(self, data: bytes, pos: int) -> None:
        assert self.scanner is not None
        try:
            end = self.scanner.feed(data, pos)
        except HttpParseError as exc:
            self._abort(str(exc))
            return
        if end >= 0:
            self._complete()

    def _complete(self) -> None:
        client = self.client
        self.client = None
        self.busy = False
        self.scanner = None
        if self.keep_alive and not self.transport.is_closing():
            self.worker.idle.append(self)
        else:
            self.transport.close()
        if client is not None:
            client.response_done()

    def _abort(self, reason: str) -> None:
        client = self.client
        self.client = None
        self.busy = False
        self.transport.close()
        if client is not None:
            client.upstream_failed(self.worker, reason, self.forwarded)

    def connection_lost(self, exc: Exception | None) -> None:
        worker = self.worker
        with contextlib.suppress(ValueError):
            worker.idle.remove(self)
        if not self.busy:
            return
        if self.mode == UNTIL_CLOSE and not self.in_head:
            self.keep_alive = False
            client = self.client
            self._complete()
            if client is not None:
                client.transport.close()
            return
        self.busy = False
        client = self.client
        self.client = None
        if not self.forwarded:
            # The worker went away holding our request: it may or may not have run it.
            self.proxy.mark_failed(worker)
        if client is not None:
            client.upstream_failed(worker, "worker closed the connection", self.forwarded)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.transport.resume_reading()


class _Downstream(asyncio.Protocol):
    """One client connection: requests are read one at a time, in order."""

    __slots__ = ("buf", "busy", "closed", "keep_alive", "proxy", "transport", "upstream")

    def __init__(self, proxy: _Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = b""
        self.busy = False
        self.closed = False
        self.keep_alive = True
        self.upstream: _Upstream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.buf and not self.busy and not self.proxy.sticky:
            # Fast path, most requests: one whole bodiless HTTP/1.1 request in one read.
            end = data.find(b"\r\n\r\n")
            if end > 0 and end + 4 == len(data):
                lower = data.lower()
                line_end = data.find(b"\r\n")
                space = data.find(b" ", 0, line_end)
                if (
                    space > 0
                    and b"\r\ncontent-length:" not in lower
                    and b"\r\ntransfer-encoding:" not in lower
                    and b"\r\nconnection:" not in lower
                    and data[line_end - 8 : line_end] == b"HTTP/1.1"
                ):
                    self.busy = True
                    self.keep_alive = True
                    self._dispatch(self.proxy.choose(None), data, data[:space])
                    return
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if self.busy:
            self.buf = data  # pipelined: wait for the response in flight
            if len(data) > MAX_HEAD:
                self.transport.pause_reading()
            return
        self._handle(data)

    def _handle(self, data: bytes) -> None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD:
                self._reply_and_close("431 Request Header Fields Too Large", "head too large")
            else:
                self.buf = data
            return
        head_end = end + 4
        proxy = self.proxy
        try:
            method, body, keep_alive, auth = parse_request_head(
                data[:head_end], want_auth=proxy.sticky
            )
            if body == 0:
                total = head_end
            elif body > 0:
                total = head_end + body
            else:
                total = ChunkedScanner().feed(data, head_end)
        except HttpParseError as exc:
            self._reply_and_close("400 Bad Request", str(exc))
            return
        if total < 0 or len(data) < total:
            self.buf = data
            return
        if len(data) > total:
            self.buf = data[total:]
            data = data[:total]
        self.busy = True
        self.keep_alive = keep_alive
        self._dispatch(proxy.choose(auth), data, method)

    def _dispatch(self, worker: _Worker | None, data: bytes, method: bytes) -> None:
        if worker is None:
            self._reply(
                _local_response("503 Service Unavailable", {"error": "no_worker_available"}, None)
            )
            return
        worker.requests += 1
        idle = worker.idle
        while idle:
            upstream = idle.pop()
            if not upstream.transport.is_closing():
                upstream.send(self, data, method)
                return
        _spawn(self._connect(worker, data, method))

    async def _connect(self, worker: _Worker, request: bytes, method: bytes) -> None:
        try:
            upstream = await worker.connect(lambda: _Upstream(worker, self.proxy))
        except OSError as exc:
            self.proxy.mark_failed(worker)
            self.upstream_failed(worker, f"connect failed: {exc.strerror or exc}", False)
            return
        if self.closed:
            worker.idle.append(upstream)
            return
        upstream.send(self, request, method)

    def response_done(self) -> None:
        self.upstream = None
        self.busy = False
        if not self.keep_alive:
            self.transport.close()
            return
        if self.buf and not self.closed:
            data, self.buf = self.buf, b""
            self.transport.resume_reading()
            self._handle(data)

    def upstream_failed(self, worker: _Worker, reason: str, forwarded: bool) -> None:
        worker.errors += 1
        self.upstream = None
        if forwarded or self.closed:
            self.transport.close()  # part of a response is out: the client must see a cut
            return
        payload: dict[str, object] = {
            "error": "worker_unavailable",
            "worker": worker.index,
            "detail": reason,
        }
        self._reply(_local_response("502 Bad Gateway", payload, worker.index))

    def _reply(self, response: bytes) -> None:
        self.transport.write(response)
        self.response_done()

    def _reply_and_close(self, status: str, reason: str) -> None:
        self.keep_alive = False
        self.busy = True
        self._reply(_local_response(status, {"error": "bad_request", "detail": reason}, None))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        upstream = self.upstream
        if upstream is not None:
            upstream.client = None  # let it finish reading, then pool it

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.transport.resume_reading()


class _Control(asyncio.Protocol):
    def __init__(self, proxy: _Proxy, done: asyncio.Future[None]) -> None:
        self.proxy = proxy
        self.done = done
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            try:
                reply = self.proxy.command(line.decode())
            except (ValueError, IndexError) as exc:
                reply = f"error {exc}"
            os.write(1, reply.encode() + b"\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)  # the supervisor closed our stdin: shut down


async def _serve(policy: str, targets: list[str]) -> None:
    loop = asyncio.get_running_loop()
    proxy = _Proxy([_Worker(i, target) for i, target in enumerate(targets)], policy)
    server = await loop.create_server(
        lambda: _Downstream(proxy), LOOPBACK, 0, backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    done: asyncio.Future[None] = loop.create_future()
    await loop.connect_read_pipe(lambda: _Control(proxy, done), sys.stdin.buffer)
    # Objects made so far live forever; keep the collector from rescanning them.
    gc.freeze()
    # Per-request garbage is acyclic; collect the young generation rarely.
    gc.set_threshold(50_000, 50, 100)
    os.write(1, f"READY {port}\n".encode())
    await done
    server.close()


def main(argv: list[str]) -> int:
    set_pdeathsig()
    start_parent_watchdog()
    import uvloop

    policy, targets = argv[0], argv[1:]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(policy, targets))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
