"""The router's keep-alive pool when a worker closes a connection it had kept open.

A server may close a keep-alive connection right after an answer without saying
``Connection: close``: uvicorn does when the app raised (Starlette has already
answered 500), and any server does when its keep-alive timeout ends. A request
the router sends on that connection meanwhile meets the close. Neither is a sign
that the worker is gone, and neither may cost the client its answer or take the
worker out of rotation (which, with every worker out, answers 503 to everyone).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness import Cluster
from harness.cluster.router import Router
from harness.cluster.router._proto import UNSAFE_REUSE_S

pytestmark = pytest.mark.processes

_OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


def test_an_app_that_raises_costs_no_other_request_and_no_worker() -> None:
    # Two workers, requests boom, echo, echo: every POST after a 500 lands on the
    # worker that just answered the 500, on the connection uvicorn is closing.
    statuses: Counter[int] = Counter()
    with (
        Cluster.start(app="tests.apps.whoami:app", workers=2) as cluster,
        httpx.Client(base_url=cluster.router_url, timeout=5.0) as client,
    ):
        for _ in range(100):
            statuses[client.get("/boom").status_code] += 1
            for _ in range(2):
                statuses[client.post("/echo", content=b"hello").status_code] += 1
        routes = cluster.routes()
    assert statuses == {500: 100, 200: 200}
    assert [(r.up, r.errors) for r in routes] == [(True, 0), (True, 0)]


class _Loopback:
    """A loopback HTTP server that answers 200, except that it closes a connection,
    unanswered, when ``closes(answered, idle_s)`` says so as a request arrives (the
    requests it answered on that connection, the seconds since the last answer): a
    keep-alive close that crossed the router's next request, made deterministic."""

    def __init__(self, closes: Callable[[int, float], bool]) -> None:
        self.closes = closes
        self.connections = 0
        self.ended = 0  # connections the router closed
        self._cond = threading.Condition()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            seen = b""
            answered, last = 0, time.monotonic()
            while not self.stop.is_set():
                data = conn.recv(65536)
                if not data:
                    with self._cond:
                        self.ended += 1
                        self._cond.notify_all()
                    return
                if not seen and self.closes(answered, time.monotonic() - last):
                    return  # close without an answer
                seen += data
                if b"\r\n\r\n" not in seen:
                    continue
                head, _, rest = seen.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    continue
                conn.sendall(_OK)
                answered, last, seen = answered + 1, time.monotonic(), b""

    def _accept(self) -> None:
        self.listener.settimeout(0.05)  # so that the loop sees ``stop``: close() wakes no accept()
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def wait_ended(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.ended >= count, timeout)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.fixture
def closes_every_second_request() -> Iterator[int]:
    server = _Loopback(lambda answered, idle_s: answered >= 1)
    try:
        yield server.port
    finally:
        server.close()


def test_a_get_that_crossed_a_close_is_sent_again_and_a_post_is_not(
    closes_every_second_request: int,
) -> None:
    port = closes_every_second_request
    with (
        Router.start([f"127.0.0.1:{port}"]) as router,
        httpx.Client(base_url=router.url, timeout=5.0) as client,
    ):
        first, second = client.get("/a"), client.get("/b")  # the second crosses the close
        assert (first.status_code, second.status_code) == (200, 200)
        client.get("/c")  # answered on the fresh connection, which is pooled again...
        post = client.post("/scans", content=b"{}")  # ...and closes under this POST
        assert post.status_code == 502
        assert post.json()["error"] == "worker_closed"  # not sent again: it may have run
        assert post.headers["x-scanproof-router"] == "local"
        assert client.get("/d").status_code == 200  # the worker stayed in rotation
        (route,) = router.routes()
    assert (route.up, route.requests, route.errors) == (True, 5, 1)


def test_a_post_after_a_long_idle_goes_on_a_fresh_connection_and_a_quick_one_reuses() -> None:
    # A server whose keep-alive timeout (just above UNSAFE_REUSE_S) always wins the
    # race against a request sent on a connection idle that long.
    keep_alive_s = UNSAFE_REUSE_S + 0.2
    server = _Loopback(lambda answered, idle_s: answered >= 1 and idle_s > keep_alive_s)
    try:
        with (
            Router.start([f"127.0.0.1:{server.port}"]) as router,
            httpx.Client(base_url=router.url, timeout=5.0) as client,
        ):
            assert client.get("/a").status_code == 200  # the connection is pooled
            time.sleep(keep_alive_s + 0.1)  # the idle time is the input here, not a wait
            post = client.post("/scans", content=b"{}")
            assert (post.status_code, post.text) == (200, '{"ok":true}')  # not 502
            assert client.post("/scans", content=b"{}").status_code == 200
            assert server.wait_ended(1)  # the router closed the stale one: the pool stays small
            (route,) = router.routes()
    finally:
        server.close()
    assert server.connections == 2  # the stale one was passed over, the fresh one reused
    assert (route.up, route.errors) == (True, 0)
