"""The router's forwarding logic, driven byte by byte through in-memory fake transports.

No sockets and no event loop: each test feeds bytes to the client-side and
worker-side protocol objects and reads what they wrote. The fast paths (a
whole bodiless request, a whole Content-Length response in one read) and the
general path must produce the same bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harness.cluster.router import _pool as pool
from harness.cluster.router import _proto as proto


class InMemoryTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def _setup(policy: str = "round-robin") -> tuple[proto.Downstream, list[proto.Upstream]]:
    workers = [pool.Worker(i, f"unix:/nonexistent/{i}") for i in range(2)]
    proxy = pool.Proxy(workers, policy)
    upstreams = []
    for worker in workers:
        upstream = proto.Upstream(worker, proxy)
        upstream.transport = InMemoryTransport()  # type: ignore[assignment]
        worker.idle.append(upstream)
        upstreams.append(upstream)
    client = proto.Downstream(proxy)
    client.transport = InMemoryTransport()  # type: ignore[assignment]
    return client, upstreams


GET = b"GET /kv HTTP/1.1\r\nHost: x\r\n\r\n"
BODY = b'{"ok":true}'
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n" + BODY


def _written(transport: object) -> bytes:
    assert isinstance(transport, InMemoryTransport)
    return transport.written


@pytest.mark.parametrize("split", [None, 5, 40, len(RESPONSE) - 1])
def test_response_gets_the_worker_header_however_it_arrives(split: int | None) -> None:
    client, (up0, _) = _setup()
    client.data_received(GET)
    assert _written(up0.transport) == GET
    pieces = [RESPONSE] if split is None else [RESPONSE[:split], RESPONSE[split:]]
    for piece in pieces:
        up0.data_received(piece)
    assert _written(client.transport) == (
        b"HTTP/1.1 200 OK\r\nX-Scanproof-Worker: 0\r\n"
        b"content-length: 11\r\ncontent-type: application/json\r\n\r\n" + BODY
    )
    assert up0 in up0.worker.idle  # back in the pool
    assert not client.busy


def test_successive_requests_rotate_and_pipelined_ones_wait_their_turn() -> None:
    client, (up0, up1) = _setup()
    client.data_received(GET + GET)  # pipelined: the second waits for the first response
    assert _written(up0.transport) == GET
    assert _written(up1.transport) == b""
    up0.data_received(RESPONSE)
    assert _written(up1.transport) == GET
    up1.data_received(RESPONSE)
    assert _written(client.transport).count(b"X-Scanproof-Worker: 0") == 1
    assert _written(client.transport).count(b"X-Scanproof-Worker: 1") == 1


def test_request_body_is_forwarded_whole_even_when_split() -> None:
    client, (up0, _) = _setup()
    post = b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"
    client.data_received(post[:30])
    assert _written(up0.transport) == b""
    client.data_received(post[30:])
    assert _written(up0.transport) == post


def test_worker_saying_connection_close_is_not_reused() -> None:
    client, (up0, _) = _setup()
    client.data_received(GET)
    up0.data_received(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
    assert up0.transport.is_closing()
    assert up0 not in up0.worker.idle


def test_client_asking_to_close_is_closed_after_its_response() -> None:
    client, (up0, _) = _setup()
    client.data_received(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    up0.data_received(RESPONSE)
    assert client.transport.is_closing()


def test_chunked_response_ends_where_the_last_chunk_ends() -> None:
    client, (up0, _) = _setup()
    client.data_received(GET)
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    up0.data_received(head + b"5\r\nhello\r\n")
    assert client.busy
    up0.data_received(b"0\r\n\r\n")
    assert not client.busy
    assert _written(client.transport).endswith(b"5\r\nhello\r\n0\r\n\r\n")


def test_worker_dropping_a_request_on_a_fresh_connection_gives_a_502_and_leaves_rotation() -> None:
    client, (up0, _) = _setup()
    client.data_received(GET)
    assert up0.busy
    assert not up0.reused
    # The probe task needs a running loop; this test only checks the immediate effects.
    up0.proxy._probing = True
    up0.connection_lost(ConnectionResetError())
    reply = _written(client.transport)
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"X-Scanproof-Router: local\r\n" in reply
    assert b'"worker": 0' in reply
    assert b'"error": "worker_closed"' in reply  # sent, then dropped: it may have run
    assert not up0.worker.up


class InMemoryConnectWorker(pool.Worker):
    """A worker whose new connections are in-memory transports, kept in ``connected``."""

    def __init__(self) -> None:
        super().__init__(0, "unix:/nonexistent/0")
        self.connected: list[proto.Upstream] = []

    async def connect(self, factory: Callable[[], proto.Upstream]) -> proto.Upstream:
        upstream = factory()
        upstream.connection_made(InMemoryTransport())  # type: ignore[arg-type]
        self.connected.append(upstream)
        return upstream


def _reused_upstream() -> tuple[proto.Downstream, proto.Upstream, InMemoryConnectWorker]:
    """One worker with one pooled connection that has already served an answer."""
    worker = InMemoryConnectWorker()
    proxy = pool.Proxy([worker], "round-robin")
    upstream = proto.Upstream(worker, proxy)
    upstream.transport = InMemoryTransport()  # type: ignore[assignment]
    worker.idle.append(upstream)
    client = proto.Downstream(proxy)
    client.transport = InMemoryTransport()  # type: ignore[assignment]
    client.data_received(GET)
    upstream.data_received(RESPONSE)
    assert upstream.reused
    assert upstream in worker.idle
    return client, upstream, worker


def test_a_get_crossing_the_close_of_a_reused_connection_is_sent_again_on_a_fresh_one() -> None:
    async def scenario() -> None:
        client, upstream, worker = _reused_upstream()
        client.data_received(GET)  # reuses the pooled connection...
        assert _written(upstream.transport) == GET + GET
        upstream.connection_lost(None)  # ...which the worker had closed after its answer
        await asyncio.gather(*pool._TASKS)
        (fresh,) = worker.connected
        assert _written(fresh.transport) == GET
        fresh.data_received(RESPONSE)
        assert _written(client.transport).count(b"HTTP/1.1 200 OK\r\n") == 2
        assert b"502" not in _written(client.transport)
        assert worker.up
        assert worker.errors == 0

    asyncio.run(scenario())


def test_a_post_crossing_the_close_of_a_reused_connection_gets_a_502_and_keeps_rotation() -> None:
    client, upstream, worker = _reused_upstream()
    post = b"POST /scans HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    client.data_received(post)
    upstream.connection_lost(None)
    reply = _written(client.transport).split(BODY, 1)[1]
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")  # not sent again: it may have run
    assert b'"error": "worker_closed"' in reply
    assert worker.connected == []
    assert worker.up  # a closed pooled connection says nothing about the worker


def test_sticky_policy_routes_one_identity_to_one_worker() -> None:
    client, (up0, up1) = _setup("sticky")
    request = b"GET / HTTP/1.1\r\nAuthorization: Bearer alice\r\n\r\n"
    for _ in range(3):
        client.data_received(request)
        target = up0 if up0.busy else up1
        target.data_received(RESPONSE)
    assert {_written(up0.transport).count(request), _written(up1.transport).count(request)} == {
        0,
        3,
    }
