"""Link faults on a real redis-server: each lands on one worker's link and no other's.

Every test starts its own cluster of ``tests.apps.whoami:app`` (workers keep a
Redis-backed key/value store) with ``links=True`` on a redis-server the harness
starts, and asks each worker directly (its own port, not the router), so the
worker that answers is known.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from harness import Cluster
from harness.cluster.link import Links
from harness.cluster.redis import make_client, open_backend
from harness.faults.nemesis import Nemesis
from harness.history.tables import HistoryWriter
from harness.run.plan import PlannedFault
from harness.run.scenario import FaultStep
from harness.targets.contract import Contract

pytestmark = pytest.mark.processes

APP = "tests.apps.whoami:app"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster.start(app=APP, workers=2, redis="server", links=True) as running:
        yield running


def _get(cluster: Cluster, worker: int, key: str = "k", timeout: float = 30.0) -> httpx.Response:
    return httpx.get(f"{cluster.workers[worker].url}/kv/{key}", timeout=timeout)


def _best_ms(cluster: Cluster, worker: int, n: int = 5) -> float:
    times = []
    for _ in range(n):
        begin = time.perf_counter()
        assert _get(cluster, worker).status_code == 200
        times.append((time.perf_counter() - begin) * 1000)
    return min(times)


def test_each_worker_reaches_redis_through_its_own_link(cluster: Cluster) -> None:
    assert cluster.links is not None
    assert httpx.put(f"{cluster.workers[0].url}/kv/shared", content=b"v").status_code == 200
    assert _get(cluster, 1, "shared").json()["value"] == "v"  # one Redis behind both links
    stats = cluster.links.stats()
    assert [s.accepted > 0 for s in stats] == [True, True]  # each worker used its own link


def test_without_link_faults_workers_talk_to_redis_directly() -> None:
    with Cluster.start(app=APP, workers=1, redis="server") as plain:
        assert plain.links is None
        assert _get(plain, 0).status_code == 200


def test_latency_lands_on_that_workers_own_commands_only(cluster: Cluster) -> None:
    # Added latency is asserted as a lower bound on time (load only adds to it); where
    # it is absent, by the link's own count of held chunks, which a loaded machine
    # cannot blur (a wall-clock upper bound failed beside three suites on two cores).
    links = cluster.links
    assert links is not None
    for worker in (0, 1):
        _best_ms(cluster, worker)  # connections open, before the fault
    assert [s.delayed for s in links.stats()] == [0, 0]
    links.latency(1, up_ms=40, down_ms=40)
    assert _best_ms(cluster, 1) >= 80  # a GET is one command: 40 ms each way
    _best_ms(cluster, 0)
    held = [s.delayed for s in links.stats()]
    assert held[0] == 0, held  # the other worker's link is untouched
    assert held[1] >= 10, held  # five GETs, each held up and down
    links.heal()
    _best_ms(cluster, 1)
    assert [s.delayed for s in links.stats()] == held  # healed: nothing held any more


def test_a_reset_is_a_connection_error_seen_by_that_worker_only(cluster: Cluster) -> None:
    assert cluster.links is not None
    for worker in (0, 1):
        assert _get(cluster, worker).status_code == 200
    cluster.links.reset(0, commands=0)
    assert _get(cluster, 0).status_code == 500  # the app does not handle Redis errors
    assert _get(cluster, 1).status_code == 200
    assert "Connection reset by peer" in cluster.log_path(0).read_text()
    assert "ConnectionError" not in cluster.log_path(1).read_text()
    assert cluster.links.stats()[0].resets >= 1
    cluster.links.heal()
    assert _get(cluster, 0).status_code == 200


def test_a_partitioned_workers_reads_fail_while_the_others_succeed(cluster: Cluster) -> None:
    assert cluster.links is not None
    for worker in (0, 1):
        assert _get(cluster, worker).status_code == 200
    cluster.links.partition(1)
    assert _get(cluster, 1).status_code == 500
    assert _get(cluster, 0).status_code == 200
    assert "Connection refused" in cluster.log_path(1).read_text()
    assert cluster.links.stats()[1].cut >= 1  # its open connection was cut
    cluster.links.heal()
    assert _get(cluster, 1).status_code == 200


def test_a_blackholed_worker_hangs_while_the_other_answers(cluster: Cluster) -> None:
    assert cluster.links is not None
    for worker in (0, 1):
        assert _get(cluster, worker).status_code == 200
    cluster.links.blackhole(0)
    with pytest.raises(httpx.ReadTimeout):
        _get(cluster, 0, timeout=1.0)
    assert _get(cluster, 1).status_code == 200
    assert cluster.links.stats()[0].dropped_bytes > 0
    cluster.links.heal()  # the swallowed connection is reset; the worker reconnects
    assert _get(cluster, 0).status_code == 200


def test_a_reset_lets_exactly_n_commands_through_then_cuts_mid_group(tmp_path: Path) -> None:
    backend = open_backend("server", workdir=tmp_path)
    try:
        with Links.start(backend.url, workers=1, log=tmp_path / "links.log") as links:
            client = make_client(links.urls[0])
            client.ping()
            links.reset(0, commands=2)
            client.set("a", 1)
            client.set("b", 2)
            with pytest.raises(redis.ConnectionError):
                client.set("c", 3)  # the third write of the group: the mid-group error
            with pytest.raises(redis.ConnectionError):
                make_client(links.urls[0]).ping()  # and every new connection, until healed
            direct = backend.client()
            assert (direct.get("a"), direct.get("b"), direct.get("c")) == (b"1", b"2", None)
            links.heal()
            assert make_client(links.urls[0]).get("a") == b"1"
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("fault", "evidence"),
    [
        ("link_partition", "worker 1: connects refused"),
        ("link_blackhole", "worker 1: PING over its link unanswered after 0.2 s"),
        ("link_latency", "worker 1: PING over its link"),
    ],
)
def test_the_nemesis_records_each_link_fault_with_its_landing_check(
    cluster: Cluster, tmp_path: Path, fault: str, evidence: str
) -> None:
    step = FaultStep(at=0.0, fault=fault, worker=1, duration=20.0, latency_ms=30.0)
    planned = PlannedFault(at_s=0.0, step=step, worker=-1, links=(1,))
    with HistoryWriter(tmp_path, proc="nemesis") as writer:
        nemesis = Nemesis(cluster, writer, contract=Contract(), time_scale=0.01, seed=1)
        record = asyncio.run(nemesis.apply(planned))
        heal = asyncio.run(nemesis.heal())
    assert record.landed, record.evidence
    assert record.evidence.startswith(evidence)
    assert record.target == "links:1"
    assert not record.destructive  # a link fault destroys no data: nothing is excused
    assert heal.landed
    assert "links healed (2 of 2 answer PING)" in heal.evidence
    assert _get(cluster, 1).status_code == 200


def test_a_reset_with_no_traffic_is_recorded_as_not_landed(
    cluster: Cluster, tmp_path: Path
) -> None:
    step = FaultStep(at=0.0, fault="link_reset", worker=0, duration=10.0, commands=1)
    planned = PlannedFault(at_s=0.0, step=step, worker=-1, links=(0,))
    with HistoryWriter(tmp_path, proc="nemesis") as writer:
        nemesis = Nemesis(cluster, writer, contract=Contract(), time_scale=0.01, seed=1)
        record = asyncio.run(nemesis.apply(planned))
    assert not record.landed
    assert record.evidence.startswith("worker 0: 0 connection(s) reset")
