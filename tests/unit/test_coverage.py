"""Coverage: scan states against faults in effect, from small hand-written histories."""

from __future__ import annotations

import doctest
import json

import pytest

from harness.errors import UsageError
from harness.judging import coverage as coverage_module
from harness.judging.coverage import (
    NO_FAULT,
    STATES,
    Coverage,
    coverage_of,
    coverage_shortfalls,
)
from tests.unit.history_catalogue import Hist, healthy_scan


def _kill_while_scanning() -> Hist:
    """alice's s1: discover 0, scanning at 100 and 200, complete 300, results 400;
    worker_kill 150-250 (scanning), delete_keys at 320 (complete), expiry answer at 900;
    bob's refused-as-not_found poll of s1 at 250 (inside the kill, while scanning)."""
    h = healthy_scan(Hist())
    h.fault("worker_kill", at=150, until=250)
    h.fault("delete_keys", at=320)
    h.status("alice", "s1", "not_found", at=900)
    h.status("bob", "s1", "not_found", at=250)
    return h


def test_ops_are_counted_per_state_and_fault_in_effect() -> None:
    cov = coverage_of(_kill_while_scanning().build())
    assert cov.faults == ("worker_kill", "delete_keys")
    assert [cov.ops(s) for s in STATES] == [1, 3, 2, 0, 1]
    # the poll at 200 and bob's at 250 fell inside the kill window; the one at 100 did not
    assert cov.ops("scanning", "worker_kill") == 2
    assert cov.cell("scanning", NO_FAULT).ops == 1
    # an instant deletion counts for the ops after it while the scan stayed in that state
    assert cov.ops("complete", "delete_keys") == 1
    assert cov.ops("expired", "delete_keys") == 0
    assert cov.ops("complete", "worker_kill") == 0
    assert cov.cell("scanning", "worker_kill").scans == 1


def test_an_anomalous_answer_does_not_move_the_scan_state() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150)  # the bug, while scanning
    h.status("alice", "s1", "scanning", at=350)  # a regression after complete
    cov = coverage_of(h.build())
    assert cov.ops("scanning") == 3
    assert cov.ops("complete") == 3
    assert cov.ops("expired") == 0


def test_faults_that_did_not_land_and_heals_cover_nothing() -> None:
    h = healthy_scan(Hist())
    h.fault("worker_kill", at=150, until=250)
    h.faults[-1]["landed"] = False
    h.fault("heal", at=260)
    cov = coverage_of(h.build())
    assert cov.faults == ()
    assert cov.ops("scanning", "*") == 0


def test_failed_scans_and_an_empty_history() -> None:
    h = Hist()
    h.discover("alice", "s2", at=0)
    h.status("alice", "s2", "failed", at=100)
    cov = coverage_of(h.build())
    assert cov.ops("failed") == 1
    assert cov.ops("complete") == 0
    assert coverage_of(Hist().build()).to_json()["rows"][1]["ops"] == 0


def test_the_json_block_reads_back_the_same() -> None:
    cov = coverage_of(_kill_while_scanning().build())
    doc = json.loads(json.dumps(cov.to_json()))
    assert [r["state"] for r in doc["rows"]] == list(STATES)
    again = Coverage.from_json(doc)
    assert again.to_json() == cov.to_json()


def test_shortfalls_name_what_was_not_exercised() -> None:
    cov = coverage_of(_kill_while_scanning().build())
    assert coverage_shortfalls(cov, {"scanning": {"worker_kill": 2, "*": 1}}) == []
    assert coverage_shortfalls(cov, {"complete.worker_kill": 1, "failed": 1}) == [
        "coverage complete x worker_kill: 0 ops, at least 1 required",
        "coverage failed: 0 ops, at least 1 required",
    ]


@pytest.mark.parametrize(
    ("minimums", "says"),
    [({"runing": 1}, "unknown scan state 'runing'"), ({"scanning": -1}, "whole number")],
)
def test_bad_minimums_are_usage_errors(minimums: dict[str, object], says: str) -> None:
    with pytest.raises(UsageError, match=says):
        coverage_shortfalls(Coverage(), minimums)


def test_the_docstring_examples() -> None:
    assert doctest.testmod(coverage_module).failed == 0
