"""What the nemesis's lost keys excuse, end to end, against an in-process fake target.

The nemesis deletes keys of a job API's contract in a shared in-process fakeredis
(no process, no real Redis) and records the fault; the checkers then judge a small
history around that record. A lost key excuses only the accepted scan its name
declares through ``{scan_id}``: never every scan of a tenant, never by a value.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness.faults.nemesis import Nemesis
from harness.history.tables import FaultRecord, HistoryWriter, load_history
from harness.judging.checkers import CheckConfig, judge
from harness.run.plan import PlannedFault
from harness.run.scenario import FaultStep
from harness.targets.contract import Contract
from tests.unit.faults.inprocess_fake_target import InprocessFakeTarget
from tests.unit.history_catalogue import MS, Hist

JOBS = Contract(
    keys={
        "result": ("jobs:{scan_id}:result",),
        "latest": ("jobs:user:{user_id}:latest",),
    }
)


def _lose(tmp_path: Path, key_class: str, data: dict[str, str]) -> FaultRecord:
    target = InprocessFakeTarget()
    target.redis.client().mset(data)
    step = FaultStep(at=0.0, fault="delete_keys", key_class=key_class, fraction=1.0)
    with HistoryWriter(tmp_path, proc="nemesis") as writer:
        nemesis = Nemesis(target, writer, contract=JOBS, time_scale=0.01, seed=1)  # type: ignore[arg-type]
        return asyncio.run(nemesis.apply(PlannedFault(at_s=0.0, step=step, worker=-1)))


def _judged_around(tmp_path: Path, record: FaultRecord) -> tuple[list[str], int]:
    """alice's scans s1 and s2 (both accepted before the fault) each answer not_found
    right after it: the scans status_not_found counts, and how many it excused."""
    at = record.t_start_ns / MS
    h = Hist()
    h.discover("alice", "s1", at=at - 50)
    h.discover("alice", "s2", at=at - 40)
    h.status("alice", "s1", "not_found", at=at + 20)
    h.status("alice", "s2", "not_found", at=at + 30)
    history = h.build()
    history = type(history)(ops=history.ops, faults=load_history(tmp_path).faults)
    verdict = judge(history, CheckConfig(retention_s=3.0, scan_deadline_s=2.0))
    r = verdict.classes["status_not_found"]
    return sorted(w.scan_id for w in r.witnesses), r.excused


def test_a_lost_result_key_excuses_exactly_its_scan(tmp_path: Path) -> None:
    record = _lose(tmp_path, "result", {"jobs:s1:result": "alice:h1", "other": "x"})
    assert (record.destructive, record.landed) == (True, True)
    assert record.affected_scans == "s1"
    assert record.affected_tenants == ""  # the value "alice:h1" is never read
    assert _judged_around(tmp_path, record) == (["s2"], 1)


def test_a_lost_tenant_key_excuses_none_of_the_tenants_scans(tmp_path: Path) -> None:
    record = _lose(tmp_path, "latest", {"jobs:user:alice:latest": "s2"})
    assert record.destructive
    assert (record.affected_scans, record.affected_tenants) == ("", "alice")
    assert _judged_around(tmp_path, record) == (["s1", "s2"], 0)


def test_a_lost_key_of_no_accepted_scan_excuses_nothing(tmp_path: Path) -> None:
    record = _lose(tmp_path, "result", {"jobs:ghost:result": "{}"})
    assert record.affected_scans == "ghost"
    assert _judged_around(tmp_path, record) == (["s1", "s2"], 0)


def test_keys_outside_the_declared_patterns_are_never_touched(tmp_path: Path) -> None:
    record = _lose(tmp_path, "result", {"jobs:s1:meta": "{}"})
    assert not record.landed
    assert not record.destructive
    assert record.affected_scans == ""


def test_only_keys_this_fault_removed_name_scans(tmp_path: Path) -> None:
    """A key the SCAN saw but that was gone by the DEL (it expired by itself) was not
    this fault's doing: its scan is not named."""
    target = InprocessFakeTarget()
    admin = target.redis.client()
    admin.mset({"jobs:s1:result": "{}", "jobs:s2:result": "{}"})
    real_delete = target.redis.delete

    def delete(*keys: str) -> int:
        admin.delete("jobs:s2:result")  # s2's key expires just before the fault reaches it
        return real_delete(*keys)

    target.redis.delete = delete  # type: ignore[method-assign]
    step = FaultStep(at=0.0, fault="delete_keys", key_class="result", fraction=1.0)
    with HistoryWriter(tmp_path, proc="nemesis") as writer:
        nemesis = Nemesis(target, writer, contract=JOBS, time_scale=0.01, seed=1)  # type: ignore[arg-type]
        record = asyncio.run(nemesis.apply(PlannedFault(at_s=0.0, step=step, worker=-1)))
    assert record.landed
    assert record.affected_scans == "s1"
    assert record.evidence == "1 of 2 result keys gone"
