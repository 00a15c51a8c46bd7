"""Each anomaly class is found where it happened, and only there (histories in memory)."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.history import schema as S
from harness.history.tables import History
from harness.judging.checkers import CheckConfig, judge
from harness.judging.verdict import Verdict
from tests.unit.history_catalogue import Hist, healthy_scan

CFG = CheckConfig(retention_s=3.0, scan_deadline_s=2.0)
SLOW = CheckConfig(retention_s=3.0, scan_deadline_s=5.0)  # scans may take a few seconds


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


def test_the_live_window_runs_from_the_last_proof_the_scan_was_unfinished() -> None:
    """A late first sighting of complete does not stretch the window: the scan finished
    after its last 'scanning' answer (at 1000 ms), so a correct service may expire it
    retention (3 s) after that, although its owner first saw it complete at 2500 ms."""
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=1000, progress=(1, 2))
    h.status("alice", "s1", "complete", at=2500, progress=(2, 2))  # a late poll
    h.status("alice", "s1", "not_found", at=4100)  # > 1000 + 3000: a correct expiry
    h.results("alice", "s1", 404, at=4200)
    assert _counts(_judge(h, SLOW)) == {}
    h.status("alice", "s1", "not_found", at=3900)  # < 1000 + 3000: still promised
    assert _counts(_judge(h, SLOW)) == {"status_not_found": 1}


def test_without_a_scanning_answer_the_window_runs_from_the_discover_request() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "complete", at=2000, progress=(2, 2))
    h.status("alice", "s1", "not_found", at=3100)  # after 0 + 3000: not provably live
    assert _counts(_judge(h, SLOW)) == {}


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


def test_a_history_the_facts_cannot_be_derived_from_makes_every_class_unknown() -> None:
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


# ---------------------------------------------- rules that claim only what the history proves
def test_a_scan_not_asked_about_after_its_deadline_is_undecided_never_stuck() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=1900, progress=(3, 14))  # just before the 2 s deadline
    healthy_scan(h, tenant="bob", scan="s2", start=3000)  # the history runs past it
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (0, 1)  # s2 only: s1 is undecided


def test_a_scan_first_seen_finished_after_its_deadline_is_undecided() -> None:
    """Seen complete only at 2.5 s (deadline 2 s) with no answer in between: it may well
    have finished in time; nothing proves it was late."""
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=500, progress=(3, 14))
    h.status("alice", "s1", "complete", at=2500, progress=(14, 14))
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (0, 0)


def test_stuck_needs_an_answer_about_that_scan() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.discover("alice", "s2", at=10)
    # past the deadline, an answer carrying s2's id says scanning: nothing about s1
    h.status("alice", "s1", "scanning", at=2500, progress=(3, 14), ids="s2")
    v = _judge(h)
    assert (v.classes["stuck_scan"].count, v.classes["stuck_scan"].opportunities) == (0, 0)
    assert v.classes["wrong_scan"].count == 1
    # an answer without any id is about the scan asked for
    h.status("alice", "s1", "scanning", at=2600, progress=(3, 14), ids="")
    r = _judge(h).classes["stuck_scan"]
    assert (r.count, r.opportunities) == (1, 1)
    assert r.witnesses[0].t_invoke_ns == 2600 * 1_000_000
    assert "still scanning" in r.witnesses[0].reason


def test_an_answer_with_another_scans_id_never_finishes_this_scan() -> None:
    """s1 is told complete with s2's id at 500 ms: that is wrong_scan, and s1 is still
    unfinished, so its own scanning answer past the deadline makes it stuck (and the
    scanning after the foreign complete is no status regression)."""
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.discover("alice", "s2", at=10)
    h.status("alice", "s1", "complete", at=500, progress=(14, 14), ids="s2")
    h.status("alice", "s1", "scanning", at=2500, progress=(5, 14))
    counts = _counts(_judge(h))
    assert counts == {"wrong_scan": 1, "stuck_scan": 1}


def test_a_foreign_answer_neither_opens_nor_shortens_the_live_window() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.discover("alice", "s2", at=10)
    h.status("alice", "s1", "complete", at=100, progress=(14, 14), ids="s2")
    h.status("alice", "s1", "scanning", at=1500, progress=(9, 14))
    h.status("alice", "s1", "complete", at=1800, progress=(14, 14))
    # 4000 ms < 1500 + 3000: still promised, whatever the foreign complete at 100 said
    h.status("alice", "s1", "not_found", at=4000)
    counts = _counts(_judge(h, SLOW))
    assert counts == {"wrong_scan": 1, "status_not_found": 1}


def test_the_live_window_of_a_scan_never_seen_finished_ends_retention_after_its_last_scanning() -> (
    None
):
    """A fast scan may finish long before its deadline and expire retention later; the
    history proves it live only until retention after its last scanning answer."""
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=100, progress=(1, 14))
    h.status("alice", "s1", "not_found", at=3200)  # > 100 + 3000: a correct expiry
    assert _counts(_judge(h, SLOW)) == {}
    h.status("alice", "s1", "not_found", at=3000, took=50)  # answered before 3100: live
    assert _counts(_judge(h, SLOW)) == {"status_not_found": 1}


def test_an_answer_still_in_flight_when_the_window_ends_is_not_judged() -> None:
    h = Hist()
    h.discover("alice", "s1", at=0)
    h.status("alice", "s1", "scanning", at=100, progress=(1, 14))
    # asked inside the window (ends at 3100 ms), answered after it: it may have been
    # served after a correct expiry
    h.status("alice", "s1", "not_found", at=3000, took=200)
    assert _counts(_judge(h, SLOW)) == {}


def test_a_lost_tenant_key_excuses_no_scan_of_that_tenant() -> None:
    h = healthy_scan(Hist())
    h.fault("delete_keys", at=120, destructive=True, tenants="alice")
    h.status("alice", "s1", "not_found", at=150)
    r = _judge(h).classes["status_not_found"]
    assert (r.count, r.excused) == (1, 0)


def test_a_lost_key_excuses_only_the_scan_it_names_among_the_tenants_scans() -> None:
    h = healthy_scan(Hist())
    healthy_scan(h, scan="s2", start=10)
    h.fault("delete_keys", at=120, destructive=True, scans="s2", tenants="alice")
    h.status("alice", "s1", "not_found", at=150)
    h.status("alice", "s2", "not_found", at=160)
    r = _judge(h).classes["status_not_found"]
    assert (r.count, r.excused) == (1, 1)
    assert r.witnesses[0].scan_id == "s1"


def test_one_crashing_checker_makes_only_its_class_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.judging import checkers

    def boom(facts: checkers.Facts) -> checkers.ClassResult:
        raise RuntimeError("checker bug")

    monkeypatch.setitem(checkers.CHECKERS, "progress_regression", boom)  # type: ignore[arg-type]
    v = _judge(healthy_scan(Hist()))
    assert v.verdict == "unknown"
    assert v.classes["progress_regression"].error == "RuntimeError: checker bug"
    assert v.classes["progress_regression"].verdict == "unknown"
    others = {n: r for n, r in v.classes.items() if n != "progress_regression"}
    assert all(not r.error and r.verdict == "pass" for r in others.values())
    assert others["status_not_found"].opportunities == 3  # the others were judged
