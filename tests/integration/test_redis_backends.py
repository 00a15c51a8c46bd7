"""Redis backends: each does what it claims, refuses what it cannot or must not do, and says why.

The "external" Redis in these tests is a redis-server this test started itself,
addressed by URL: never the machine's Redis on port 6379.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest
import redis

from harness import ClusterEvent, EventKind
from harness.cluster.redis import (
    ExternalRedis,
    Fault,
    RedisBackend,
    ServerRedis,
    open_backend,
    resolve_spec,
)
from harness.errors import UsageError

pytestmark = pytest.mark.processes


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.real_redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[RedisBackend]:
    with open_backend(request.param) as opened:
        yield opened


@pytest.fixture
def server() -> Iterator[RedisBackend]:
    with open_backend("server") as opened:
        yield opened


def _set(backend: RedisBackend, key: str, value: str) -> None:
    client = backend.client()
    try:
        client.set(key, value)
    finally:
        client.close()


def _get(backend: RedisBackend, key: str) -> bytes | None:
    client = backend.client()
    try:
        return client.get(key)  # type: ignore[no-any-return]
    finally:
        client.close()


def test_serves_on_loopback_and_restart_loses_the_data(backend: RedisBackend) -> None:
    assert backend.url.startswith("redis://127.0.0.1:")
    _set(backend, "k", "v")
    assert _get(backend, "k") == b"v"
    (old_pid,) = backend.pids()
    seconds = backend.restart()
    assert 0 < seconds < 5
    assert backend.pids() != [old_pid]
    assert _get(backend, "k") is None
    _set(backend, "k", "again")  # same URL, serving again
    assert _get(backend, "k") == b"again"


def test_overlapping_restarts_and_stalls_each_complete(backend: RedisBackend) -> None:
    # The nemesis applies faults concurrently, one thread each. Unserialised, one restart
    # killed the server another was waiting on: "readline of closed file", a crashed run.
    def restart() -> float:
        return backend.restart()

    def stall_then_unstall() -> None:
        backend.stall()
        backend.unstall()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(restart) for _ in range(3)] + [pool.submit(stall_then_unstall)]
        for future in futures:
            future.result(timeout=60)
    assert len(backend.pids()) == 1
    assert backend.ping()
    _set(backend, "k", "after")
    assert _get(backend, "k") == b"after"


def test_stall_freezes_clients_until_unstall(backend: RedisBackend) -> None:
    backend.stall()
    assert not backend.ping()
    backend.unstall()
    assert backend.ping()


def test_flush_expire_delete(backend: RedisBackend) -> None:
    events: list[ClusterEvent] = []
    backend.on_event = events.append
    for key in ("a", "b", "c"):
        _set(backend, key, "1")
    assert backend.delete("a", "missing") == 1
    assert backend.expire("b", 0.001) is True
    assert backend.expire("missing", 1) is False
    backend.flush()
    assert [_get(backend, k) for k in ("a", "b", "c")] == [None, None, None]
    assert [e.kind for e in events] == [
        EventKind.REDIS_DELETED,
        EventKind.REDIS_EXPIRED,
        EventKind.REDIS_EXPIRED,
        EventKind.REDIS_FLUSHED,
    ]


def test_embedded_refuses_faults_it_cannot_do_and_points_to_server() -> None:
    with open_backend("embedded") as embedded:
        assert Fault.PAUSE not in embedded.supported_faults
        with pytest.raises(UsageError, match=r"does not support fault .pause.*--redis server"):
            embedded.client_pause(1)
        with pytest.raises(UsageError, match="'eviction'"):
            embedded.set_maxmemory(10_000_000)


@pytest.mark.real_redis
def test_server_evicts_for_real_under_maxmemory(server: RedisBackend) -> None:
    limit = server.maxmemory_for(200_000)
    assert limit > 1_000_000  # an empty server already uses about 1 MB
    server.set_maxmemory(limit, "allkeys-lru")
    client = server.client()
    try:
        for i in range(400):
            client.set(f"key:{i}", "x" * 1000)
        # Every write succeeded (no OOM error) because the server evicted keys itself.
        # Which ones is approximate: LRU is sampled, with a clock of 1 s resolution.
        assert 0 < client.dbsize() < 400
        assert int(client.info("stats")["evicted_keys"]) > 0
    finally:
        client.close()


@pytest.mark.real_redis
def test_server_client_pause_holds_commands(server: RedisBackend) -> None:
    server.client_pause(0.5)
    slow = redis.Redis.from_url(server.url, socket_timeout=0.2)
    try:
        with pytest.raises(redis.TimeoutError):
            slow.set("k", "v")
    finally:
        slow.close()


@pytest.mark.real_redis
def test_bad_eviction_policy_is_named() -> None:
    with open_backend("server") as server, pytest.raises(UsageError, match="'lru-ish'"):
        server.set_maxmemory(10_000_000, "lru-ish")


@pytest.mark.real_redis
def test_external_url_refuses_destructive_actions_without_opt_in(server: RedisBackend) -> None:
    external = open_backend(server.url)
    assert isinstance(external, ExternalRedis)
    _set(server, "keep", "me")
    for action in (
        external.flush,
        lambda: external.set_maxmemory(50_000_000),
        lambda: external.delete("keep"),
        lambda: external.expire("keep", 1),
    ):
        with pytest.raises(UsageError, match="pass --allow-destructive"):
            action()
    assert _get(server, "keep") == b"me"
    with pytest.raises(UsageError, match="does not support fault 'restart'"):
        external.restart()
    with pytest.raises(UsageError, match="does not support fault 'stall'"):
        external.stall()
    external.client_pause(0.01)  # not destructive: allowed on a loopback host
    opted_in = open_backend(server.url, allow_destructive=True)
    opted_in.flush()
    assert _get(server, "keep") is None


def test_faults_on_a_remote_host_need_their_own_opt_in() -> None:
    # No connection is made: the refusal comes before any command is sent.
    remote = ExternalRedis.__new__(ExternalRedis)
    RedisBackend.__init__(remote, "redis://10.1.2.3:6379/0")
    remote.host, remote.allow_destructive, remote.allow_remote_faults = "10.1.2.3", True, False
    with pytest.raises(UsageError, match=r"non-loopback.*pass --allow-remote-faults"):
        remote.flush()


def test_auto_says_which_backend_it_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    kind, note = resolve_spec("auto")
    assert kind in ("server", "embedded")
    assert f"picked {kind}" in note
    monkeypatch.setenv("PATH", "/nonexistent")
    assert resolve_spec("auto") == (
        "embedded",
        "--redis auto picked embedded (no redis-server on PATH)",
    )
    with pytest.raises(UsageError, match="redis-server is not on PATH"):
        ServerRedis(None)


@pytest.mark.parametrize("spec", ["memcached", "http://localhost:6379"])
def test_unknown_spec_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError, match="use auto, embedded, server or redis://"):
        open_backend(spec)
