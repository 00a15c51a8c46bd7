"""Each anomaly class is found where it happened, and only there (histories in memory)."""

from __future__ import annotations

import pandas as pd
import pytest

from harness import schema as S
from harness.checkers import CheckConfig, judge
from harness.history import History
from harness.verdict import Verdict
from tests.unit.history_catalogue import Hist, healthy_scan

CFG = CheckConfig(retention_s=3.0, scan_deadline_s=2.0)


def _judge(h: Hist, cfg: CheckConfig = CFG) -> Verdict:
    return judge(h.build(), cfg)


def _counts(v: Verdict) -> dict[str, int]:
    return {n: r.count for n, r in v.classes.items() if r.count}


def test_healthy_scan_passes_with_opportunities_counted() -> None:
    v = _judge(healthy_scan(Hist()))
    assert v.verdict == "pass"
    assert _counts(v) == {}
    assert v.classes["status_not_found"].opportunities == 3
    assert v.classes["results_404"].opportunities == 1
    assert v.classes["stuck_scan"].opportunities == 1  # seen complete before its deadline


def test_not_found_on_another_worker_is_status_not_found_with_witness() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150, worker=2)
    v = _judge(h)
    r = v.classes["status_not_found"]
    assert v.verdict == "fail"
    assert (r.count, r.opportunities) == (1, 4)
    (w,) = r.witnesses
    assert (w.worker, w.body_status, w.scan_id) == (2, "not_found", "s1")
    assert "live" in w.reason


def test_not_found_after_retention_is_not_an_anomaly() -> None:
    h = healthy_scan(Hist())
    # first seen complete at 300 ms; retention 3 s: 3400 ms is past it
    h.status("alice", "s1", "not_found", at=3400)
    h.results("alice", "s1", 404, at=3450)
    assert _counts(_judge(h)) == {}


def test_results_404_while_live() -> None:
    h = healthy_scan(Hist())
    h.results("alice", "s1", 404, at=250, worker=1)
    v = _judge(h)
    assert v.classes["results_404"].count == 1


def test_info_and_fail_ops_never_count() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150, outcome="info")
    h.results("alice", "s1", 404, at=160, outcome="fail")
    assert _counts(_judge(h)) == {}


@pytest.mark.parametrize(
    ("word", "progress", "reason"),
    [
        ("complete", None, "no progress field"),
        ("scanning", (0, 0), "total_strategies is 0"),
        ("complete", (3, 14), "fewer strategies completed"),
    ],
)
def test_zero_progress(word: str, progress: tuple[int, int] | None, reason: str) -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", word, at=100, progress=progress)
    r = _judge(h).classes["zero_progress"]
    assert r.count == 1
    assert reason in r.witnesses[0].reason


def test_progress_regression_needs_real_order() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=100, progress=(7, 14), took=50)
    # overlaps the first poll (began before it ended): no order, no regression
    h.status("alice", "s1", "scanning", at=120, progress=(3, 14), took=10)
    assert _judge(h).classes["progress_regression"].count == 0
    h.status("alice", "s1", "scanning", at=200, progress=(5, 14))
    r = _judge(h).classes["progress_regression"]
    assert r.count == 1
    assert "after an earlier poll had seen 7" in r.witnesses[0].reason


def test_status_flip_complete_to_scanning_is_status_regression() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "scanning", at=500, progress=(14, 14), worker=1)
    h.results("alice", "s1", 202, at=550, worker=1)
    r = _judge(h).classes["status_regression"]
    assert r.count == 2
    # status and results are judged on their own: the poll at 500 ms follows the first
    # complete (300 ms), the fetch at 550 ms follows the first 200 (400 ms)
    assert r.opportunities == 2


def test_wrong_scan_payload_from_another_scan() -> None:
    h = healthy_scan(Hist())
    healthy_scan(h, scan="s2", start=1000)
    h.results("alice", "s1", 200, at=1500, ids="s2")
    r = _judge(h).classes["wrong_scan"]
    assert r.count == 1
    assert "s2" in r.witnesses[0].reason


def test_cross_tenant_leak_and_proper_refusals() -> None:
    h = healthy_scan(Hist())
    h.status("mallory", "s1", "not_found", at=150)
    h.results("mallory", "s1", 404, at=160)
    h.results("mallory", "s1", 403, at=170)
    assert _judge(h).classes["cross_tenant_leak"].count == 0
    h.status("mallory", "s1", "complete", at=350, progress=(14, 14), users="alice")
    h.results("mallory", "s1", 404, at=360, users="alice")  # a 404 carrying alice's data
    r = _judge(h).classes["cross_tenant_leak"]
    assert (r.count, r.opportunities) == (2, 5)
    assert "mallory (not the owner alice)" in r.witnesses[0].reason


def test_stuck_scan_judged_only_when_the_deadline_is_inside_the_history() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=1000, progress=(0, 14))
    assert _judge(h).classes["stuck_scan"].opportunities == 0
    h.status("alice", "s1", "scanning", at=2500, progress=(0, 14), worker=3)
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (1, 1)
    assert r.witnesses[0].worker == 3


def test_a_scan_its_owner_could_not_ask_about_after_its_deadline_is_undecided() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=1000, progress=(3, 14))
    for t in (2100, 2400, 2700):  # an outage: 503s past the 2 s deadline
        h.status("alice", "s1", "", at=t, http_status=503, outcome="info")
    h.status("alice", "s1", "failed", at=3000)
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (0, 0)
    h.status("alice", "s1", "scanning", at=2500, progress=(3, 14), worker=2)  # an answer
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (1, 1)
    assert (r.witnesses[0].worker, r.witnesses[0].body_status) == (2, "scanning")


def test_a_scan_seen_finished_early_counts_before_its_deadline_passes() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "failed", at=500)
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (0, 1)


def test_destructive_fault_on_that_scan_excuses_instead_of_counting() -> None:
    h = healthy_scan(Hist())
    fid = h.fault("delete_keys", at=120, destructive=True, scans="s1")
    h.status("alice", "s1", "not_found", at=150)
    r = _judge(h).classes["status_not_found"]
    assert (r.count, r.excused, dict(r.excused_by)) == (0, 1, {"delete_keys": 1})
    assert fid  # recorded
    # the same fault aimed at another scan excuses nothing
    h2 = healthy_scan(Hist())
    h2.fault("delete_keys", at=120, destructive=True, scans="s9")
    h2.status("alice", "s1", "not_found", at=150)
    assert _judge(h2).classes["status_not_found"].count == 1


def test_flush_excuses_only_scans_accepted_before_it() -> None:
    h = healthy_scan(Hist())
    h.fault("flush", at=120, destructive=True, scope="all")
    h.status("alice", "s1", "not_found", at=150)
    h.discover("alice", "s2", at=200)
    h.status("alice", "s2", "not_found", at=300)
    r = _judge(h).classes["status_not_found"]
    assert (r.count, r.excused) == (1, 1)
    assert r.witnesses[0].scan_id == "s2"


def test_anomaly_inside_a_fault_window_names_the_fault() -> None:
    h = healthy_scan(Hist())
    fid = h.fault("worker_pause", at=140, until=160)
    h.status("alice", "s1", "not_found", at=150)
    r = _judge(h).classes["status_not_found"]
    assert r.witnesses[0].faults == (fid,)
    assert dict(r.fault_windows) == {fid: 1}


def test_a_crashing_checker_makes_the_verdict_unknown_never_pass() -> None:
    broken = History(ops=pd.DataFrame({"nonsense": [1]}), faults=pd.DataFrame())
    v = judge(broken, CFG)
    assert v.verdict == "unknown"
    assert all(r.error for r in v.classes.values())


def test_fail_beats_unknown() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150)
    v = judge(h.build(), CFG, infrastructure_errors=("redis vanished",))
    assert v.verdict == "fail"
    assert any("redis vanished" in r for r in v.reasons)


def test_thresholds_allow_counts() -> None:
    h = healthy_scan(Hist())
    h.status("alice", "s1", "not_found", at=150)
    assert judge(h.build(), CFG, thresholds={"status_not_found": 1}).verdict == "pass"


def test_verdict_json_always_has_all_eight_classes() -> None:
    doc = _judge(Hist()).to_json()
    assert list(doc["anomalies"]) == list(S.ANOMALY_CLASSES)
    for cls in doc["anomalies"].values():
        assert set(cls) >= {"count", "opportunities", "rate", "ci95", "excused"}


def test_lost_data_never_excuses_a_leak() -> None:
    h = healthy_scan(Hist())
    h.fault("flush", at=120, destructive=True, scope="all")
    h.results("mallory", "s1", 200, at=150, users="alice")
    r = _judge(h).classes["cross_tenant_leak"]
    assert (r.count, r.excused) == (1, 0)


def test_leaving_failed_is_a_status_regression() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "failed", at=100)
    h.status("alice", "s1", "failed", at=150)
    assert _judge(h).classes["status_regression"].count == 0
    h.status("alice", "s1", "complete", at=200, progress=(14, 14), worker=2)
    r = _judge(h).classes["status_regression"]
    assert (r.count, r.opportunities) == (1, 2)
    assert "left failed for complete" in r.witnesses[0].reason
