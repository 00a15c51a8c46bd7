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
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from harness import Cluster
from harness.cluster.router import Router

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


@pytest.fixture
def closes_every_second_request() -> Iterator[int]:
    """A loopback server that answers the first request of each connection and closes
    the connection, unanswered, when the second arrives: a keep-alive close that
    crossed the router's next request, made deterministic."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            seen = b""
            answered = False
            while not stop.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                seen += data
                if b"\r\n\r\n" not in seen:
                    continue
                if answered:
                    return  # the second request: close without an answer
                head, _, rest = seen.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    continue
                conn.sendall(_OK)
                answered, seen = True, b""

    def accept() -> None:
        listener.settimeout(0.05)  # so that the loop sees ``stop``: close() wakes no accept()
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        assert not thread.is_alive()


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
