"""The nemesis's pure parts and its key faults, against an in-process fakeredis.

No process is started: the backend's capability catalogue is class data, and the
key faults run against one shared ``fakeredis.FakeServer``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.cluster.redis import EmbeddedRedis, ExternalRedis, RedisBackend, ServerRedis
from harness.errors import UsageError
from harness.faults.nemesis import Nemesis, check_supported
from harness.history.tables import FaultRecord, HistoryWriter, load_history
from harness.run.plan import PlannedFault
from harness.run.scenario import FAULT_NAMES, FaultStep
from harness.targets.contract import Contract
from tests.unit.faults.inprocess_fake_target import InprocessFakeTarget


def _catalogue_only(cls: type[RedisBackend]) -> RedisBackend:
    # name and supported_faults are class attributes; skip __init__, which starts or pings Redis
    return cls.__new__(cls)


def _schedule(*faults: str) -> list[PlannedFault]:
    return [PlannedFault(at_s=0.0, step=FaultStep(at=0.0, fault=f), worker=-1) for f in faults]


@pytest.mark.parametrize(
    ("backend", "spec", "fault", "message"),
    [
        (
            EmbeddedRedis,
            "embedded",
            "evict",
            "fault 'evict' needs Redis support for 'eviction', which --redis embedded "
            "(embedded) lacks; use --redis server",
        ),
        (
            EmbeddedRedis,
            "auto",
            "redis_pause",
            "fault 'redis_pause' needs Redis support for 'pause', which --redis auto "
            "(embedded) lacks; use --redis server",
        ),
        (
            ExternalRedis,
            "redis://cache:6379/0",
            "redis_restart",
            "fault 'redis_restart' needs Redis support for 'restart', which only a Redis scanproof "
            "starts has (--redis server), not --redis redis://cache:6379/0; remove the fault "
            "from the scenario",
        ),
        (
            ExternalRedis,
            "redis://cache:6379/0",
            "redis_stall",
            "fault 'redis_stall' needs Redis support for 'stall', which only a Redis scanproof "
            "starts has (--redis server), not --redis redis://cache:6379/0; remove the fault "
            "from the scenario",
        ),
    ],
)
def test_unsupported_faults_are_refused_with_the_fix(
    backend: type[RedisBackend], spec: str, fault: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        check_supported(_schedule("worker_kill", fault), _catalogue_only(backend), spec)
    assert str(info.value) == message


def test_the_first_unsupported_fault_of_the_schedule_is_named() -> None:
    with pytest.raises(UsageError, match=r"^fault 'redis_pause' "):
        check_supported(
            _schedule("flush", "redis_pause", "evict"), _catalogue_only(EmbeddedRedis), "embedded"
        )


def test_a_real_redis_server_carries_every_fault() -> None:
    check_supported(_schedule(*FAULT_NAMES), _catalogue_only(ServerRedis), "server")


@pytest.mark.parametrize("backend", [EmbeddedRedis, ExternalRedis, ServerRedis])
def test_worker_faults_need_nothing_from_redis(backend: type[RedisBackend]) -> None:
    check_supported(
        _schedule("worker_kill", "worker_pause", "deploy"), _catalogue_only(backend), "x"
    )


# ------------------------------------------------------------ key faults, in process
def _lose(tmp_path: Path, step: FaultStep, data: dict[str, str]) -> tuple[FaultRecord, set[str]]:
    cluster = InprocessFakeTarget()
    admin = cluster.redis.client()
    admin.mset(data)
    with HistoryWriter(tmp_path, proc="nemesis") as writer:
        nemesis = Nemesis(cluster, writer, contract=Contract(), time_scale=0.01, seed=1)  # type: ignore[arg-type]
        record = asyncio.run(nemesis.apply(PlannedFault(at_s=0.0, step=step, worker=-1)))
    left = {k.decode() for k in admin.keys("*")}
    return record, left


@pytest.mark.parametrize("fault", ["delete_keys", "expire_keys"])
def test_lost_lookup_keys_are_recorded_with_their_scans_and_no_tenant_from_values(
    tmp_path: Path, fault: str
) -> None:
    data = {
        "opportunity_scan_lookup:scan_1": "alice:h1",  # a value is never read for owners
        "opportunity_scan_lookup:scan_2": "bob:h2",
        "opportunity_scan_result:scan_1": "{}",
    }
    step = FaultStep(at=0.0, fault=fault, key_class="lookup", fraction=1.0)
    record, left = _lose(tmp_path, step, data)
    assert left == {"opportunity_scan_result:scan_1"}
    assert record.landed
    assert record.destructive
    assert record.affected_scans == "scan_1,scan_2"
    assert record.affected_tenants == ""
    assert record.evidence == "2 of 2 lookup keys gone"
    # the record is in the history, where the checkers read it
    faults = load_history(tmp_path).faults
    assert list(faults["affected_scans"]) == ["scan_1,scan_2"]


def test_a_fraction_of_keys_attributes_only_the_chosen_scans(tmp_path: Path) -> None:
    data = {f"opportunity_scan_result:scan_{i}": "{}" for i in range(10)}
    step = FaultStep(at=0.0, fault="delete_keys", key_class="result", fraction=0.3)
    record, left = _lose(tmp_path, step, data)
    gone = {k.split(":")[1] for k in set(data) - left}
    assert len(gone) == 3
    assert record.affected_scans == ",".join(sorted(gone))
    assert record.affected_tenants == ""


def test_no_matching_keys_is_recorded_as_not_landed_and_not_destructive(tmp_path: Path) -> None:
    step = FaultStep(at=0.0, fault="delete_keys", key_class="lookup", fraction=1.0)
    record, _ = _lose(tmp_path, step, {"session:1": "x"})
    assert not record.landed
    assert not record.destructive
    assert (record.affected_scans, record.affected_tenants) == ("", "")
    assert record.evidence == "0 of 0 lookup keys gone"
