"""A cluster as its users meet it: real worker processes behind the per-request router.

Every test starts its own cluster of ``tests.apps.whoami:app`` (a FastAPI app
that reports its pid and WORKER_ID and keeps a Redis-backed key/value store).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import Cluster, ClusterEvent, EventKind
from harness.cluster._proc import is_alive
from harness.errors import InfrastructureError, UsageError

pytestmark = pytest.mark.processes

APP = "tests.apps.whoami:app"
HEADER = "x-scanproof-worker"


@pytest.fixture
def events() -> list[ClusterEvent]:
    return []


@pytest.fixture
def cluster(events: list[ClusterEvent]) -> Iterator[Cluster]:
    with Cluster.start(app=APP, workers=4, on_event=events.append) as running:
        yield running


@pytest.fixture
def client(cluster: Cluster) -> Iterator[httpx.Client]:
    # One keep-alive connection: per-request routing must still rotate workers.
    with httpx.Client(base_url=cluster.router_url, timeout=5.0) as http:
        yield http


def _workers_of(client: httpx.Client, count: int) -> list[int]:
    return [int(client.get("/whoami").headers[HEADER]) for _ in range(count)]


def test_successive_requests_on_one_connection_visit_workers_in_order(
    client: httpx.Client,
) -> None:
    assert _workers_of(client, 9) == [0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_each_worker_is_its_own_process_with_its_worker_id(
    cluster: Cluster, client: httpx.Client
) -> None:
    bodies = [client.get("/whoami").json() for _ in range(4)]
    assert [b["worker_id"] for b in bodies] == ["0", "1", "2", "3"]
    assert sorted(b["pid"] for b in bodies) == sorted(w.pid for w in cluster.workers)
    assert len({b["pid"] for b in bodies}) == 4


def test_workers_share_redis_but_not_memory(client: httpx.Client) -> None:
    client.put("/kv/greeting", content=b"hello")  # lands on worker 0
    reads = [client.get("/kv/greeting").json()["value"] for _ in range(4)]
    assert reads == ["hello"] * 4
    counts = [client.get("/memo/k").json()["count"] for _ in range(8)]
    assert counts == [1, 1, 1, 1, 2, 2, 2, 2]


def test_request_bodies_and_chunked_responses_pass_through_intact(client: httpx.Client) -> None:
    body = bytes(range(256)) * 1000
    assert client.post("/echo", content=body).content == body
    streamed = client.get("/stream/50")
    assert streamed.text == "".join(f"chunk {i}\n" for i in range(50))
    assert client.get("/whoami").status_code == 200  # the connection is still usable


def test_killed_worker_gives_one_quick_502_naming_it_then_leaves_rotation(
    cluster: Cluster, client: httpx.Client, events: list[ClusterEvent]
) -> None:
    assert _workers_of(client, 4) == [0, 1, 2, 3]
    cluster.kill(2)
    assert not cluster.workers[2].alive
    assert [e.kind for e in events] == [EventKind.WORKER_KILLED]
    seen = []
    for _ in range(8):
        begin = time.perf_counter()
        response = client.get("/whoami")
        elapsed = time.perf_counter() - begin
        seen.append((response.status_code, response.headers[HEADER]))
        if response.status_code == 502:
            assert elapsed < 0.5
            assert response.json()["error"] == "worker_unavailable"
            assert response.json()["worker"] == 2
    assert seen[:3] == [(200, "0"), (200, "1"), (502, "2")]
    assert [w for _, w in seen[3:]] == ["3", "0", "1", "3", "0"]
    route = cluster.routes()[2]
    assert (route.up, route.errors) == (False, 1)


def test_restarted_worker_is_a_new_process_back_in_rotation(
    cluster: Cluster, client: httpx.Client, events: list[ClusterEvent]
) -> None:
    old = cluster.workers[1]
    cluster.kill(1)
    _workers_of(client, 4)  # the router discovers the dead worker
    seconds = cluster.restart(1)
    new = cluster.workers[1]
    assert new.alive
    assert new.pid != old.pid
    assert new.url == old.url  # same port: clients that cached it still reach it
    assert 0 < seconds < 5
    assert events[-1].kind is EventKind.WORKER_RESTARTED
    assert events[-1].duration == pytest.approx(seconds)
    assert sorted(set(_workers_of(client, 8))) == [0, 1, 2, 3]
    assert httpx.get(f"{new.url}/whoami").json()["pid"] == new.pid


def test_fork_restart_is_fast(cluster: Cluster) -> None:
    times = [cluster.restart(0) for _ in range(3)]
    # Forking from the preloaded parent: tens of ms; a fresh interpreter takes ~0.5 s.
    assert min(times) < 0.3, times
    assert [r.method for r in cluster.restarts] == ["fork"] * 3


def test_paused_worker_is_stopped_until_resumed(cluster: Cluster, client: httpx.Client) -> None:
    cluster.pause(3)
    assert cluster.workers[3].stopped
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{cluster.workers[3].url}/whoami", timeout=0.3)
    cluster.resume(3)
    assert not cluster.workers[3].stopped
    assert httpx.get(f"{cluster.workers[3].url}/whoami").json()["worker_id"] == "3"


@pytest.mark.parametrize("rolling", [True, False])
def test_deploy_replaces_every_worker_and_loses_their_memory(
    cluster: Cluster, client: httpx.Client, events: list[ClusterEvent], rolling: bool
) -> None:
    before = {w.pid for w in cluster.workers}
    assert {client.get("/memo/k").json()["count"] for _ in range(4)} == {1}
    assert {client.get("/memo/k").json()["count"] for _ in range(4)} == {2}
    times = cluster.deploy(rolling=rolling)
    assert len(times) == 4
    assert [(e.kind.value, e.worker) for e in events] == [
        ("deploy_started", None),
        *[("worker_restarted", i) for i in range(4)],
        ("deploy_finished", None),
    ]
    after = {w.pid for w in cluster.workers}
    assert before.isdisjoint(after)
    assert all(w.alive for w in cluster.workers)
    counts = [client.get("/memo/k") for _ in range(4)]
    assert [r.status_code for r in counts] == [200] * 4
    assert {r.json()["count"] for r in counts} == {1}


def test_sticky_policy_keeps_each_identity_on_one_worker(cluster: Cluster) -> None:
    cluster.set_policy("sticky")
    with httpx.Client(base_url=cluster.router_url) as http:
        for user in ("alice", "bob", "carol"):
            seen = {
                http.get("/whoami", headers={"Authorization": f"Bearer {user}"}).headers[HEADER]
                for _ in range(5)
            }
            assert len(seen) == 1


def test_random_policy_uses_every_worker(cluster: Cluster, client: httpx.Client) -> None:
    cluster.set_policy("random")
    assert set(_workers_of(client, 60)) == {0, 1, 2, 3}


def test_spawn_start_method_serves_and_restarts() -> None:
    with Cluster.start(app=APP, workers=2, start_method="spawn") as spawned:
        with httpx.Client(base_url=spawned.router_url) as http:
            assert _workers_of(http, 4) == [0, 1, 0, 1]
            spawned.restart(0)
            assert _workers_of(http, 2) == [0, 1]
        assert spawned.restarts[0].method == "spawn"


def test_close_leaves_no_process_behind() -> None:
    with Cluster.start(app=APP, workers=2) as running:
        pids = running.pids()
        assert len(pids) == 5  # 2 workers, their parent, the router, Redis
    deadline = time.monotonic() + 5
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [p for p in pids if is_alive(p)] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "--workers 0"),
        ({"app": "no_colon"}, "MODULE:ATTR"),
        ({"app": "no_such_module_xyz:app"}, "cannot be imported"),
        ({"router": "least-conn"}, "round-robin, random, sticky"),
        ({"redis": "memcached"}, "redis://HOST:PORT/DB"),
        ({"start_method": "forkserver"}, "spawn"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        Cluster.start(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_missing_attribute_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no attribute 'nope'"):
        Cluster.start(app="tests.apps.whoami:nope", workers=1)


def test_app_that_fails_to_start_reports_its_traceback(tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError, match="broken app: this import always fails"):
        Cluster.start(app="tests.apps.broken:app", workers=1, workdir=tmp_path)
    with pytest.raises(InfrastructureError, match="broken app: this import always fails"):
        Cluster.start(app="tests.apps.broken:app", workers=1, start_method="spawn")


def test_operations_on_a_dead_worker_say_what_to_do(cluster: Cluster) -> None:
    cluster.kill(0)
    with pytest.raises(UsageError, match="worker 0 is not running; restart it first"):
        cluster.pause(0)
    with pytest.raises(UsageError, match="out of range"):
        cluster.kill(7)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers 0"),
        (["--app", "nope"], "expected MODULE:ATTR"),
        (["--router", "hash"], "unknown policy"),
        (["--redis", "memcached://x"], "unknown backend"),
    ],
)
def test_up_rejects_bad_input_with_one_line_and_exit_2(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness", "up", "--app", APP, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
