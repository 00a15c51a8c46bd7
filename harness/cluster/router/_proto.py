"""The router's hot path: one protocol per client connection, one per worker connection.

Callback-based asyncio ``Protocol``s (no coroutine or task per request). A
request is framed (head up to CRLFCRLF, then its body) and forwarded as is; a
response is framed the same way and forwarded with one header spliced in after
its status line. Fast paths handle the common shapes (a whole bodiless request,
a whole Content-Length response, each in one read) without a function call
into the parser; everything else takes the general path.
"""

from __future__ import annotations

import asyncio
import contextlib
from time import monotonic
from typing import Final

from harness.cluster.router._http_parse import (
    CHUNKED,
    MAX_HEAD,
    UNTIL_CLOSE,
    ChunkedScanner,
    HttpParseError,
    parse_request_head,
    parse_response_head,
)
from harness.cluster.router._pool import (
    BAD_ANSWER,
    NO_WORKER,
    WORKER_CLOSED,
    WORKER_UNAVAILABLE,
    Proxy,
    Worker,
    local_response,
    spawn_task,
    with_host,
)

# Sent again once, on a fresh connection, when a reused connection closes before any
# byte of the answer: the worker had closed it after its previous answer (uvicorn does
# after an app error, servers do when a keep-alive timeout ends) as the request crossed.
_RETRIED: Final = frozenset({b"GET", b"HEAD", b"OPTIONS"})
# Any other request goes on a pooled connection only if it was idle less than this:
# an older one may be closing at the server's keep-alive timeout (gunicorn: 2 s, Node
# and uvicorn: 5 s) as the request crosses, and such a request cannot be sent again.
UNSAFE_REUSE_S: Final = 1.0


class Upstream(asyncio.Protocol):
    """One keep-alive connection to a worker, carrying one request at a time."""

    __slots__ = (
        "busy",
        "client",
        "forwarded",
        "hbuf",
        "idle_at",
        "in_head",
        "keep_alive",
        "method",
        "mode",
        "proxy",
        "remaining",
        "request",
        "reused",
        "scanner",
        "transport",
        "worker",
    )

    def __init__(self, worker: Worker, proxy: Proxy) -> None:
        self.worker = worker
        self.proxy = proxy
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: Downstream | None = None
        self.busy = False
        self.in_head = True
        self.forwarded = False
        self.hbuf = b""
        self.method = b"GET"
        self.request = b""
        self.reused = False  # it served an answer before this request
        self.idle_at = monotonic()  # when it last went back to the pool
        self.keep_alive = True
        self.mode = 0
        self.remaining = 0
        self.scanner: ChunkedScanner | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, client: Downstream, request: bytes, method: bytes) -> None:
        self.client = client
        client.upstream = self
        self.busy = True
        self.in_head = True
        self.forwarded = False
        self.method = method
        self.request = request
        host_line = self.worker.host_line
        self.transport.write(with_host(request, host_line) if host_line else request)

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
                    self.reused = True
                    self.idle_at = monotonic()
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
            if status >= 500:
                # Not pooled: a server often closes the connection after an error answer
                # without saying so (uvicorn, when the app raised), and a request sent on it
                # meanwhile would be lost.
                self.keep_alive = False
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
        self.reused = True
        if self.keep_alive and not self.transport.is_closing():
            self.idle_at = monotonic()
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
            client.upstream_failed(self.worker, BAD_ANSWER, reason, self.forwarded)

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
        if self.forwarded:
            if client is not None:
                client.upstream_failed(worker, WORKER_CLOSED, "answer cut short", True)
            return
        if self.reused and not self.hbuf:
            # A pooled connection closed before any byte of the answer: most likely the
            # worker closed it after its previous answer as this request crossed, which
            # says nothing about the worker. A safe request is sent again, once, on a
            # fresh connection; any other may have run, and its client is told so.
            if client is not None and not client.closed and self.method in _RETRIED:
                client.upstream = None
                spawn_task(client.connect_and_send(worker, self.request, self.method))
                return
        else:
            # A fresh connection dropped: the worker went away holding our request.
            self.proxy.mark_failed(worker)
        if client is not None:
            client.upstream_failed(
                worker, WORKER_CLOSED, "worker closed the connection (the request may have run)",
                False,
            )  # fmt: skip

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.transport.resume_reading()


class Downstream(asyncio.Protocol):
    """One client connection: requests are read one at a time, in order."""

    __slots__ = ("buf", "busy", "closed", "keep_alive", "proxy", "transport", "upstream")

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = b""
        self.busy = False
        self.closed = False
        self.keep_alive = True
        self.upstream: Upstream | None = None

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

    def _dispatch(self, worker: Worker | None, data: bytes, method: bytes) -> None:
        if worker is None:
            self._reply(local_response("503 Service Unavailable", {"error": NO_WORKER}, None))
            return
        worker.requests += 1
        idle = worker.idle
        while idle:
            upstream = idle.pop()
            if upstream.transport.is_closing():
                continue
            if method not in _RETRIED and monotonic() - upstream.idle_at > UNSAFE_REUSE_S:
                # The freshest is too old for this request, and the rest are older: close
                # them all rather than let a pool that only such requests visit grow.
                upstream.transport.close()
                worker.drop_idle()
                break
            upstream.send(self, data, method)
            return
        spawn_task(self.connect_and_send(worker, data, method))

    async def connect_and_send(self, worker: Worker, request: bytes, method: bytes) -> None:
        """Send ``request`` on a new connection to ``worker``."""
        try:
            upstream = await worker.connect(lambda: Upstream(worker, self.proxy))
        except OSError as exc:
            self.proxy.mark_failed(worker)
            detail = f"connect failed: {exc.strerror or exc}"
            self.upstream_failed(worker, WORKER_UNAVAILABLE, detail, False)
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

    def upstream_failed(self, worker: Worker, error: str, reason: str, forwarded: bool) -> None:
        worker.errors += 1
        self.upstream = None
        if forwarded or self.closed:
            self.transport.close()  # part of a response is out: the client must see a cut
            return
        payload: dict[str, object] = {"error": error, "worker": worker.index, "detail": reason}
        self._reply(local_response("502 Bad Gateway", payload, worker.index))

    def _reply(self, response: bytes) -> None:
        self.transport.write(response)
        self.response_done()

    def _reply_and_close(self, status: str, reason: str) -> None:
        self.keep_alive = False
        self.busy = True
        self._reply(local_response(status, {"error": "bad_request", "detail": reason}, None))

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
