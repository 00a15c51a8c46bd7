"""Judging a job-queue service (issue 19) on small hand-made histories.

Celery's shape: PENDING means "running *or unknown*", a failed task can make the
status endpoint answer 500, the status answer's id echoes the URL, no tenants, no
progress, no results endpoint. Each rule claims only what the history proves.
"""

from __future__ import annotations

import json

import pytest

from harness.history import schema as S
from harness.judging.checkers import CheckConfig, judge
from harness.judging.verdict import Verdict
from tests.unit.history_catalogue import Hist

DEADLINE_S = 1.0  # 1000 ms
RETENTION_S = 5.0
NEVER = S.NEVER_ISSUED_PREFIX + "000000000001"
QUEUE = CheckConfig(
    retention_s=RETENTION_S,
    scan_deadline_s=DEADLINE_S,
    progress=False,
    results=False,
    scan_id_echo=True,
    tenancy="none",
    unknown_id_state="pending",
)


def _pending(h: Hist, scan: str, *, at: float, **kw: object) -> str:
    return h.status("alice", scan, "pending", at=at, raw_status="PENDING", **kw)


def _error(h: Hist, scan: str, *, at: float, code: int = 500) -> str:
    """A status request the service answered with a 5xx (recorded ``info``, no state)."""
    return h.status("alice", scan, "", at=at, http_status=code, outcome="info", ids="")


def _judge(h: Hist, config: CheckConfig = QUEUE) -> Verdict:
    return judge(h.build(), config)


def test_a_scan_pending_for_ever_is_stuck_by_its_deadline_and_not_before() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    for t in (100, 400, 700, 990):
        _pending(h, "s1", at=t)
    early = _judge(h)
    assert early.classes["stuck_scan"].count == 0  # nothing asked past the deadline yet
    _pending(h, "s1", at=1200)
    late = _judge(h)
    stuck = late.classes["stuck_scan"]
    assert (late.verdict, stuck.count) == ("fail", 1)
    assert "still pending (running or unknown)" in stuck.witnesses[0].reason
    assert late.classes["status_not_found"].count == 0  # pending is never not_found


def test_complete_then_pending_is_a_status_regression() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    _pending(h, "s1", at=100)
    h.status("alice", "s1", "complete", at=300)
    _pending(h, "s1", at=500)  # its result was lost: Celery reads it PENDING again
    v = _judge(h)
    regression = v.classes["status_regression"]
    assert regression.count == 1
    assert regression.witnesses[0].reason == (
        "status said pending after a poll that had already said complete"
    )


def test_pending_after_a_lost_result_is_excused_only_for_the_listed_scan() -> None:
    h = Hist()
    for scan, start in (("s1", 0), ("s2", 10)):
        h.discover("alice", scan, at=start)
        h.status("alice", scan, "complete", at=start + 300)
        _pending(h, scan, at=start + 600)
    h.fault("delete_keys", at=400, destructive=True, scans="s1")
    regression = _judge(h).classes["status_regression"]
    assert (regression.count, regression.excused) == (1, 1)
    assert regression.witnesses[0].scan_id == "s2"


def test_a_5xx_after_complete_is_terminal_unreadable_and_never_excused() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "failed", at=300)
    _error(h, "s1", at=500)
    # a fault that destroyed the scan's data excuses lost state, not an unreadable one
    h.fault("delete_keys", at=400, destructive=True, scope="all")
    v = _judge(h)
    unreadable = v.classes["terminal_unreadable"]
    assert (v.verdict, unreadable.count, unreadable.excused) == ("fail", 1, 0)
    assert "HTTP 500 after an answer had said failed" in unreadable.witnesses[0].reason


def test_a_scan_whose_answers_are_only_5xx_from_its_deadline_on_is_terminal_unreadable() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    _pending(h, "s1", at=100)
    for t in (600, 900, 1100, 1300):
        _error(h, "s1", at=t)
    unreadable = _judge(h).classes["terminal_unreadable"]
    assert (unreadable.count, unreadable.opportunities) == (1, 1)
    assert "as did every answer from its deadline on (2)" in unreadable.witnesses[0].reason


def test_5xx_answers_that_proves_nothing_are_not_terminal_unreadable() -> None:
    h = Hist()
    # s1: a 500 before its deadline, then SUCCESS: the service recovered in time
    h.discover("alice", "s1", at=0)
    _error(h, "s1", at=200)
    h.status("alice", "s1", "complete", at=400)
    # s2: past its deadline a 500, then PENDING: that is stuck_scan's, not unreadable
    h.discover("alice", "s2", at=0)
    _error(h, "s2", at=1100)
    _pending(h, "s2", at=1300)
    # s3: seen complete, then 500s only while Redis was stalled (every scan answers 5xx)
    h.discover("alice", "s3", at=0)
    h.status("alice", "s3", "complete", at=300)
    h.fault("redis_stall", at=1000, until=2000)
    _error(h, "s3", at=1500)
    # s4: seen complete, then a 500 after its retention: it may be gone by then
    h.discover("alice", "s4", at=0)
    h.status("alice", "s4", "complete", at=300)
    _error(h, "s4", at=6000)
    v = _judge(h)
    assert v.classes["terminal_unreadable"].count == 0
    assert v.classes["stuck_scan"].count == 1  # s2


def test_never_issued_ids_must_read_as_the_contract_says() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "complete", at=300)
    h.status("bob", NEVER, "pending", at=400, raw_status="PENDING", ids=NEVER)
    right = _judge(h)
    assert right.classes["wrong_scan"].verdict == "pass"
    assert right.classes["wrong_scan"].opportunities == 1  # the echoed status id: no proof
    h.status(
        "bob", S.NEVER_ISSUED_PREFIX + "000000000002", "complete", at=500, raw_status="SUCCESS"
    )
    wrong = _judge(h).classes["wrong_scan"]
    assert wrong.count == 1
    assert "a never-issued id read as complete (HTTP 200, 'SUCCESS')" in wrong.witnesses[0].reason


def test_an_echoed_status_id_proves_nothing() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "complete", at=300, ids="s2")  # an echo cannot say this, but
    assert _judge(h).classes["wrong_scan"].count == 0  # the contract says it only echoes
    with_ids = CheckConfig(retention_s=RETENTION_S, scan_deadline_s=DEADLINE_S)
    assert judge(h.build(), with_ids).classes["wrong_scan"].count == 1


@pytest.mark.parametrize("nothing_tested", [False, True])
def test_not_applicable_classes_never_pass_and_never_make_the_run_unknown(
    nothing_tested: bool,
) -> None:
    h = Hist()
    if not nothing_tested:
        h.discover("alice", "s1", at=0)
        _pending(h, "s1", at=100)
        h.status("alice", "s1", "complete", at=300)
    expected = ["status_not_found", "results_404", "zero_progress", "cross_tenant_leak"]
    v = judge(h.build(), QUEUE, expected_classes=expected)
    moot = ("results_404", "zero_progress", "progress_regression", "cross_tenant_leak")
    for name in moot:
        result = v.classes[name]
        assert (result.verdict, result.expected) == ("not_applicable", False), name
        assert result.not_applicable
    assert v.verdict == ("unknown" if nothing_tested else "pass")
    assert not any(n in r for r in v.reasons for n in moot), v.reasons
    doc = json.loads(json.dumps(v.to_json()))
    assert doc["anomalies"]["cross_tenant_leak"]["verdict"] == "not_applicable"
    assert 'tenancy = "none"' in doc["anomalies"]["cross_tenant_leak"]["not_applicable"]
    again = Verdict.from_json(doc, source="verdict.json")
    assert again.classes["results_404"].verdict == "not_applicable"
    assert again.classes["results_404"].not_applicable == v.classes["results_404"].not_applicable


def test_a_verdict_json_from_before_terminal_unreadable_reads_it_as_not_applicable() -> None:
    doc = judge(Hist().build(), QUEUE).to_json()
    del doc["anomalies"]["terminal_unreadable"]
    old = Verdict.from_json(doc, source="old/verdict.json")
    assert old.classes["terminal_unreadable"].verdict == "not_applicable"
    assert not old.classes["terminal_unreadable"].error


def test_a_stuck_scans_witness_names_the_fault_that_hit_it_while_it_ran() -> None:
    # A job worker is killed 200 ms into the task; the poll that proves the task lost
    # comes long after, when no fault is in effect: the witness still names the kill.
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.discover("alice", "s2", at=1500)  # accepted after the kill: not hurt by it
    kill = h.fault("job_worker_kill", at=200, until=250)
    _pending(h, "s1", at=1200)
    _pending(h, "s2", at=2700)
    stuck = _judge(h).classes["stuck_scan"]
    assert stuck.count == 2
    by_scan = {w.scan_id: w.faults for w in stuck.witnesses}
    assert by_scan == {"s1": (kill,), "s2": ()}


def test_a_passing_5xx_after_complete_is_an_outage_not_an_unreadable_scan() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "complete", at=300)
    _error(h, "s1", at=400, code=503)  # a moment of overload...
    h.status("alice", "s1", "complete", at=500)  # ...and the state reads again
    unreadable = _judge(h).classes["terminal_unreadable"]
    assert (unreadable.count, unreadable.opportunities) == (0, 1)
    _error(h, "s1", at=600)  # from here on it never reads again: that is the anomaly
    unreadable = _judge(h).classes["terminal_unreadable"]
    assert unreadable.count == 1
    assert "no later answer read it" in unreadable.witnesses[0].reason


def test_a_5xx_in_an_outages_after_effects_is_not_terminal_unreadable() -> None:
    # Redis stalled while the scan ran; long after the stall ended the service still
    # answers 503 (its circuit breaker is open): that proves nothing about the scan.
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "complete", at=300)
    h.fault("redis_stall", at=350, until=400)
    _error(h, "s1", at=900, code=503)
    assert _judge(h).classes["terminal_unreadable"].count == 0


def test_the_final_heal_of_every_run_is_not_an_outage() -> None:
    # Every schedule ends with a heal row; answers after it still prove unreadability.
    h = Hist()
    h.discover("alice", "s1", at=0)
    _pending(h, "s1", at=100)
    h.fault("heal", at=500, until=520)
    for t in (1100, 1300):
        _error(h, "s1", at=t)
    assert _judge(h).classes["terminal_unreadable"].count == 1
