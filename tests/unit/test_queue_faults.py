"""Queue faults and job worker faults without processes: scenario validation, the run
namespace, which scans a dropped message names, and the issued ids read from shards."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import fakeredis
import pytest

from harness.errors import UsageError
from harness.faults.queues import IssuedScans, bind_run, drop, glob_of, mentioned
from harness.history.tables import Completion, HistoryWriter
from harness.run.scenario import FaultStep, check_fault_needs, scenario_from_mapping

QUEUE_KEYS = {"queue": ("celery",), "inflight": ("unacked", "unacked_index")}


def _steps(*faults: str) -> list[FaultStep]:
    return [FaultStep(at=0.5, fault=f) for f in faults]


@pytest.mark.parametrize("fault", ["job_worker_kill", "job_worker_pause", "job_worker_restart"])
def test_a_job_worker_fault_without_job_workers_is_refused_in_one_line(fault: str) -> None:
    with pytest.raises(UsageError, match=rf"^fault '{fault}' at 0.5 needs job workers: pass") as e:
        check_fault_needs(_steps(fault), job_workers=0, keys=QUEUE_KEYS)
    assert "\n" not in str(e.value)
    check_fault_needs(_steps(fault), job_workers=1, keys=QUEUE_KEYS)  # with them: fine


def test_a_job_worker_fault_on_a_target_run_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot run with --target"):
        check_fault_needs(_steps("job_worker_kill"), job_workers=1, keys={}, target=True)


@pytest.mark.parametrize(
    ("fault", "key_class"), [("drop_queued", "queue"), ("drop_inflight", "inflight")]
)
def test_a_queue_fault_needs_the_contract_key_class(fault: str, key_class: str) -> None:
    with pytest.raises(UsageError, match=rf"needs the contract's \[keys\] {key_class} patterns"):
        check_fault_needs(_steps(fault), job_workers=0, keys={"result": ("r:{scan_id}",)})
    check_fault_needs(_steps(fault), job_workers=0, keys=QUEUE_KEYS)


def test_on_a_shared_redis_a_queue_pattern_must_name_the_run() -> None:
    with pytest.raises(UsageError, match=r"pattern 'celery' must contain \{run\}"):
        check_fault_needs(_steps("drop_queued"), job_workers=0, keys=QUEUE_KEYS, shared_redis=True)
    check_fault_needs(
        _steps("drop_queued"), job_workers=0, keys={"queue": ("celery:{run}",)}, shared_redis=True
    )


def test_scenario_files_accept_the_new_faults() -> None:
    scenario = scenario_from_mapping(
        {
            "name": "jobs",
            "faults": [
                {"at": 0.2, "fault": "job_worker_kill", "worker": 0, "down": 5.0},
                {"at": 0.4, "fault": "job_worker_pause", "duration": 3.0},
                {"at": 0.5, "fault": "drop_inflight"},
            ],
        },
        source="jobs.toml",
    )
    assert [f.fault for f in scenario.faults] == [
        "job_worker_kill",
        "job_worker_pause",
        "drop_inflight",
    ]


def test_run_namespace_binding() -> None:
    assert bind_run(("q:{run}:celery", "unacked"), "sp01") == ("q:sp01:celery", "unacked")
    with pytest.raises(UsageError, match="no run id"):
        bind_run(("q:{run}",), None)
    assert glob_of("jobs:{any}:{scan_id}") == "jobs:*:*"


def test_a_scan_is_named_only_by_its_whole_id() -> None:
    blobs = [b'{"headers": {"id": "task-7"}}', b"[scan_17]", b"abc"]
    assert mentioned(blobs, {"task-7", "task", "scan_1", "scan_17", "ab", "zz"}) == (
        "scan_17",
        "task-7",
    )


def test_drop_reads_and_deletes_exactly_the_matching_keys() -> None:
    client = fakeredis.FakeRedis()
    client.lpush("celery", json.dumps({"headers": {"id": "aaa111"}}), '{"headers":{"id":"bbb2"}}')
    client.hset("unacked", "tag1", json.dumps([{"headers": {"id": "ccc3"}}, "", "celery"]))
    client.zadd("unacked_index", {"tag1": 1.0})
    client.set("other", "aaa111")
    queued = drop(client, ["celery"])
    assert queued.keys == ("celery",)
    assert mentioned(queued.messages, {"aaa111", "bbb2", "ccc3"}) == ("aaa111", "bbb2")
    inflight = drop(client, ["unacked", "unacked_index"])
    assert inflight.keys == ("unacked", "unacked_index")
    assert mentioned(inflight.messages, {"aaa111", "bbb2", "ccc3"}) == ("ccc3",)
    assert sorted(k.decode() for k in client.keys("*")) == ["other"]
    assert drop(client, ["celery"]).messages == ()  # nothing left: nothing to name


def test_issued_scans_are_read_from_the_shards_as_they_grow(tmp_path: Path) -> None:
    issued = IssuedScans(tmp_path)
    with HistoryWriter(tmp_path, proc="driver-0") as driver:
        op = driver.invoke(kind="discover", tenant="t")
        driver.complete(op, Completion(outcome="ok", http_status=201, scan_id="s1"))
        poll = driver.invoke(kind="status", tenant="t", scan_id="never-issued")
        driver.complete(poll, Completion(outcome="ok", http_status=200))
        assert issued.refresh() == {"s1"}
        late = driver.invoke(kind="discover", tenant="t")
        before = time.monotonic_ns()

        def answer() -> None:  # the create raced the drop: its answer comes a bit later
            time.sleep(0.2)
            driver.complete(late, Completion(outcome="ok", http_status=201, scan_id="s2"))

        thread = threading.Thread(target=answer)
        thread.start()
        try:
            assert issued.settle(before, timeout=5.0) == {"s1", "s2"}
        finally:
            thread.join()


def test_a_run_with_a_job_fault_and_no_job_workers_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    from harness.run.runner import RunOptions, run_chaos
    from harness.run.scenario import Scenario

    scenario = Scenario(name="jobs", faults=(FaultStep(at=0.5, fault="job_worker_pause"),))
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="needs job workers: pass --job-workers"):
        run_chaos(RunOptions(scenario=scenario, out=out))
    with pytest.raises(UsageError, match="--job-ready-log: applies to job workers only"):
        run_chaos(RunOptions(scenario=Scenario(name="x"), out=out, job_ready_log="ready"))
    assert not out.exists()
